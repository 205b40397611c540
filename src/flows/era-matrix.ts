/**
 * The era matrix: which flow serves a request, from the caller's era and the upstream's. The one
 * place the choice is made (docs/flows/). Pure.
 *
 * | caller                                | legacy upstream | 2026-07-28-only upstream |
 * | ------------------------------------- | --------------- | ------------------------ |
 * | 2026-07-28 request                    | pooled          | pass-through             |
 * | 2025 initialize (a new client session)| relayed         | hosted                   |
 * | 2025 request without a session id     | pooled          | pooled (not translated)  |
 *
 * A 2025 request on a session goes to the session's backend, chosen by the same matrix when the
 * session was created or reopened. An upstream whose era is not known yet is probed first, except
 * for an initialize: it is relayed, and the relayed flow reports a refusal only a 2026-07-28-only
 * server gives, for the era to be found out and the matrix asked again.
 */

export type UpstreamEra = 'legacy' | 'modern';
export type Caller = 'modern' | 'initialize' | 'sessionless';
export type Flow = 'pooled' | 'pass-through' | 'relayed' | 'hosted';

const MATRIX: Readonly<Record<Caller, Readonly<Record<UpstreamEra, Flow>>>> = {
  modern: { legacy: 'pooled', modern: 'pass-through' },
  initialize: { legacy: 'relayed', modern: 'hosted' },
  // A sessionless 2025 caller in front of a 2026-07-28-only server has no flow of its own yet:
  // the pooled session's initialize is refused there (docs/flows/pooled.md).
  sessionless: { legacy: 'pooled', modern: 'pooled' },
};

export function flowFor(caller: Caller, upstream: UpstreamEra): Flow {
  return MATRIX[caller][upstream];
}

/** What a client session runs on: the flow its initialize took in front of this upstream. */
export function backendFor(upstream: UpstreamEra): 'relayed' | 'hosted' {
  return flowFor('initialize', upstream) === 'hosted' ? 'hosted' : 'relayed';
}

/**
 * What a flow that found the upstream's era changed hands back to the dispatcher: find the era out
 * again, and if the matrix now names another flow, run it; else `otherwise` finishes the request
 * as the flow would have (with the upstream's answer).
 */
export interface EraChanged {
  readonly kind: 'era-changed';
  readonly otherwise: () => Promise<void> | void;
}

/** A flow's outcome: done (nothing), or the upstream's era changed under it. */
export type FlowOutcome = EraChanged | void;
