/**
 * A 2025-era client's session in front of a modern-only (2026-07-28) upstream, which keeps no
 * sessions at all: the proxy holds everything the session is (the client as it declared itself at
 * initialize, the negotiated version, the log level it set) and each request carries it upstream
 * in the 2026 envelope (mcp/modern-upstream.ts). Nothing to replay or recover: any replica, and
 * this one after a restart, can serve the session from its (sealed) id alone.
 */
import type { LoggingLevel } from '../../mcp/era.js';
import { askIdOf } from '../../mcp/hosted-input.js';
import { paramHeaderValues, toolParamHeadersOf, type ParamHeader } from '../../mcp/param-headers.js';
import type { LegacyClient } from '../../mcp/modern-upstream.js';
import type { HostedListen } from './listen.js';
import { InFlightRequests } from './in-flight.js';

let hosted = 0;
// Bounds what one session's tools/list answers can make the proxy keep (tools with Mcp-Param-* headers are few).
const MAX_TOOLS_WITH_HEADERS = 1000;

export class HostedSession {
  /** For log lines, as links have (`hosted-<n>`); never an id. */
  readonly label = `hosted-${++hosted}`;
  /** Set by logging/setLevel; until then the upstream sends no log notifications (2026 default). */
  logLevel: LoggingLevel | undefined = undefined;
  /** Questions (input_required) sent to the client and not answered yet: id → who waits. */
  private readonly waiting = new Map<string, (response: unknown) => void>();
  private asked = 0;
  /** resources/subscribe'd URIs (answered here; the GET stream's listen carries them upstream). */
  readonly subscriptions = new Set<string>();
  /** Tools whose inputSchema declares Mcp-Param-* headers, learnt from tools/list answers. */
  private readonly toolHeaders = new Map<string, ParamHeader[]>();
  /** Requests whose answer is under way, by the client's id: what notifications/cancelled names. */
  readonly inFlight = new InFlightRequests();
  /** The client's GET stream, while open: how to end it, and its upstream listen. */
  private stream: { readonly stop: () => void; readonly listen: HostedListen } | undefined;

  constructor(
    readonly client: LegacyClient,
    /** The legacy revision negotiated with the client. */
    readonly protocolVersion: string,
  ) {}

  /**
   * DELETE, eviction, expiry or re-authentication: the upstream keeps nothing, so there is nothing
   * to tell it. The requests still in flight carry on (their answers go straight to the client); a
   * DELETE cancels them first (session/client-sessions.ts), the others do not: the client asked
   * for none of them.
   */
  end(): void {
    this.stream?.stop();
  }

  /** A tools/list result (one page) went by: remember which tools need Mcp-Param-* headers. */
  learnTools(result: unknown): void {
    const learnt = toolParamHeadersOf(result);
    if (learnt === undefined) return;
    const tools = (result as { tools: unknown[] }).tools;
    for (const tool of tools) {
      const name = (tool as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') continue;
      const headers = learnt.get(name);
      if (headers === undefined) this.toolHeaders.delete(name);
      else if (this.toolHeaders.size < MAX_TOOLS_WITH_HEADERS || this.toolHeaders.has(name)) this.toolHeaders.set(name, headers);
    }
  }

  /** The Mcp-Param-* headers a tools/call of `tool` with `args` needs (none if unknown). */
  paramHeadersFor(tool: unknown, args: unknown): Record<string, string> {
    const declarations = typeof tool === 'string' ? this.toolHeaders.get(tool) : undefined;
    return declarations === undefined ? {} : paramHeaderValues(declarations, args);
  }

  /** A GET stream opened: the one before it (if any) ends. */
  streamOpened(stop: () => void, listen: HostedListen): void {
    const previous = this.stream;
    this.stream = { stop, listen };
    previous?.stop();
  }

  streamClosed(stop: () => void): void {
    if (this.stream?.stop === stop) this.stream = undefined;
  }

  /** resources/subscribe or unsubscribe: the open stream listens again with the new set. */
  subscribe(uri: string, on: boolean): Promise<void> {
    const had = this.subscriptions.has(uri);
    if (on === had) return Promise.resolve();
    if (on) this.subscriptions.add(uri);
    else this.subscriptions.delete(uri);
    return this.stream?.listen.refilter() ?? Promise.resolve();
  }

  /** A new question for the client: its id (unique in this session), and `deliver` for its answer. */
  ask(deliver: (response: unknown) => void): string {
    const id = askIdOf(++this.asked);
    this.waiting.set(id, deliver);
    return id;
  }

  /** The question was answered, timed out or abandoned: a late answer finds nobody. */
  forget(id: string): void {
    this.waiting.delete(id);
  }

  /**
   * A response the client POSTed: to the question it answers, if it is waiting here. False when
   * nobody waits (answered already, timed out, or asked by another replica).
   */
  answer(id: string, response: unknown): boolean {
    const deliver = this.waiting.get(id);
    if (deliver === undefined) return false;
    this.waiting.delete(id);
    deliver(response);
    return true;
  }

  /** Questions waiting for the client (for tests and metrics). */
  get waitingCount(): number {
    return this.waiting.size;
  }
}
