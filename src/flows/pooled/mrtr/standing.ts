/**
 * A call's place on its pooled session's standing stream (listen/feed.ts), for the questions a
 * legacy server sends there rather than on the call's own answer (a v1 SDK tool asking without
 * `relatedRequestId`). The stream is held open from before the call goes upstream until its
 * answer is over, parked rounds included; a question attributed to the call (mcp/standing-questions.ts)
 * goes to its MRTR exchange exactly as one on its own answer would. One that comes before the
 * exchange exists (the answer's headers not read yet) waits for it; one the call can no longer
 * take (its answer was not an MRTR stream, or is over) is refused upstream.
 *
 *   waiting ─ attach(exchange) ─▶ attached ─ release ─▶ released
 *      └────────────── release ───────────────────────────▲
 */
import type { JsonRpcId } from '../../../errors.js';
import type { FeedAsker, NotificationFeed } from '../listen/feed.js';

/** Where an attributed question goes: the call's exchange (Exchange.heardOnStandingStream). */
export type QuestionSink = (id: JsonRpcId, method: string, params: unknown) => void;

type Early = readonly [id: JsonRpcId, method: string, params: unknown];

type StandingState =
  | { readonly kind: 'waiting'; readonly early: Early[] }
  | { readonly kind: 'attached'; readonly sink: QuestionSink }
  | { readonly kind: 'released' };

export class StandingCall implements FeedAsker {
  private state: StandingState = { kind: 'waiting', early: [] };

  constructor(
    readonly clientCapabilities: Readonly<Record<string, unknown>> | undefined,
    private readonly feed: NotificationFeed,
    /** Answers a question nobody will take with an error (it must not wait for ever upstream). */
    private readonly refuse: (id: JsonRpcId, method: string) => void,
  ) {}

  ask(id: JsonRpcId, method: string, params: unknown): void {
    const state = this.state;
    if (state.kind === 'waiting') state.early.push([id, method, params]);
    else if (state.kind === 'attached') state.sink(id, method, params);
    else this.refuse(id, method);
  }

  /** waiting → attached: the call's exchange takes its questions, those that came early first. */
  attach(sink: QuestionSink): void {
    const state = this.state;
    if (state.kind !== 'waiting') return;
    this.state = { kind: 'attached', sink };
    for (const [id, method, params] of state.early) sink(id, method, params);
  }

  /** released, unless an exchange took the call's questions (it releases the place when its answer is over). */
  releaseUnlessTaken(): void {
    if (this.state.kind !== 'attached') this.release();
  }

  /** → released: the call is over; the stream may close. Questions still waiting are refused. */
  release(): void {
    const state = this.state;
    if (state.kind === 'released') return;
    this.state = { kind: 'released' };
    this.feed.release(this);
    if (state.kind === 'waiting') for (const [id, method] of state.early) this.refuse(id, method);
  }
}
