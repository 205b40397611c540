/**
 * Parked upstream exchanges (MRTR, flows/pooled/mrtr/mrtr.ts): the upstream's answer to a 2026-07-28 request
 * that stopped at a question (elicitation, sampling, roots) the client must answer by re-sending
 * its request. Parked here until that retry claims it; bounded by count (a full registry refuses
 * to park: the caller ends that exchange, and the retry re-runs the request) and by time (an
 * exchange nobody claims is ended when its deadline passes).
 *
 *   park ─▶ parked ─┬─ claim (the retry, its round) ─▶ claimed   (the caller owns it again)
 *                   ├─ deadline ─▶ ended('timeout')
 *                   ├─ upstream closed it ─▶ ended('upstream-closed')
 *                   └─ shutdown ─▶ ended('shutdown')
 *
 * Each entry is ended exactly once (its `end` runs once, whatever came first). The clock is
 * injected: tests run deadlines without waiting.
 */
import { randomBytes } from 'node:crypto';

export type ParkEndReason = 'timeout' | 'upstream-closed' | 'shutdown';

/** What a parked exchange must be able to do when it leaves the registry without being claimed. */
export interface Parkable {
  /** End the upstream exchange: answer its open questions with errors, cancel, discard. */
  end(reason: ParkEndReason): void;
}

export type ParkedState<T> =
  | { readonly kind: 'parked'; readonly value: T; readonly round: number; readonly cancelTimer: () => void }
  | { readonly kind: 'claimed' }
  | { readonly kind: 'ended'; readonly reason: ParkEndReason };

/** Schedules `run` after `ms`; returns what cancels it. */
export type Schedule = (run: () => void, ms: number) => () => void;

export interface ParkedOptions {
  readonly max: number;
  readonly timeoutMs: number;
  /** Injectable for tests; real timers (unref'd) by default. */
  readonly schedule?: Schedule;
}

export interface ParkedExchanges<T extends Parkable> {
  /**
   * Park `value` at `round` under a new random handle (or under `handle`, re-parked by the retry
   * that claimed it); undefined when the registry is full.
   */
  park(value: T, round: number, handle?: string): string | undefined;
  /** The retry's claim: the parked value, if this handle is parked at exactly this round. */
  claim(handle: string, round: number): T | undefined;
  /** The upstream closed the exchange while it was parked. */
  closed(handle: string): void;
  /** End every parked exchange (shutdown). */
  clear(): void;
  readonly size: number;
  /** For tests: the state of a handle (undefined once it left: claimed or ended). */
  stateOf(handle: string): ParkedState<T>['kind'] | undefined;
}

// Handles are never guessed at: they only travel inside a sealed requestState. They must not
// collide across replicas sharing the secret (a retry may land on another one, which must not
// claim an exchange of its own by mistake): a random per-process prefix and a counter.
const HANDLE_PREFIX = `${randomBytes(12).toString('base64url')}.`;
let handles = 0;

/** Real timers, unref'd (a pending deadline never keeps the process up). */
export const realSchedule: Schedule = (run, ms) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export function createParkedExchanges<T extends Parkable>(options: ParkedOptions): ParkedExchanges<T> {
  const { max, timeoutMs } = options;
  const schedule = options.schedule ?? realSchedule;
  const entries = new Map<string, ParkedState<T>>();

  /** parked → ended: only from parked; false if it had left already. */
  const end = (handle: string, reason: ParkEndReason): boolean => {
    const state = entries.get(handle);
    if (state?.kind !== 'parked') return false;
    entries.delete(handle);
    state.cancelTimer();
    state.value.end(reason);
    return true;
  };

  return {
    park(value, round, handle = HANDLE_PREFIX + (++handles).toString(36)) {
      if (entries.size >= max) return undefined;
      const cancelTimer = schedule(() => void end(handle, 'timeout'), timeoutMs);
      entries.set(handle, { kind: 'parked', value, round, cancelTimer });
      return handle;
    },
    claim(handle, round) {
      const state = entries.get(handle);
      if (state?.kind !== 'parked' || state.round !== round) return undefined;
      entries.delete(handle);
      state.cancelTimer();
      return state.value;
    },
    closed(handle) {
      end(handle, 'upstream-closed');
    },
    clear() {
      for (const handle of [...entries.keys()]) end(handle, 'shutdown');
    },
    get size() {
      return entries.size;
    },
    stateOf(handle) {
      return entries.get(handle)?.kind;
    },
  };
}
