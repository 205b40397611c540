/**
 * Probe and metrics routes, answered by the proxy itself and never forwarded upstream.
 *   healthz: the process is alive.
 *   readyz:  the upstream answers HTTP (a cheap OPTIONS, cached briefly so that probes from many
 *            kubelets or load balancers do not become upstream load); 503 when it does not.
 *   metrics: Prometheus text format.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { UpstreamClient } from '../upstream/client.js';

// Long enough to absorb bursts of probes, short enough that readiness follows the upstream.
const READY_CACHE_MS = 1_000;
const PROBE_TIMEOUT_MS = 2_000;

export async function healthRoutes(
  app: FastifyInstance,
  deps: { config: Config; upstream: UpstreamClient; metrics: Metrics },
): Promise<void> {
  const { config, upstream, metrics } = deps;
  const quiet = { config: { quiet: true } };

  app.get(config.healthPath, quiet, async () => ({ status: 'ok' }));

  let cached: { at: number; ready: Promise<boolean> } | undefined;
  app.get(config.readyPath, quiet, async (_request, reply) => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > READY_CACHE_MS) {
      cached = { at: now, ready: upstream.probe(PROBE_TIMEOUT_MS) };
    }
    const ready = await cached.ready;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'upstream unreachable' });
  });

  const { registry } = metrics;
  if (config.metricsEnabled && registry !== undefined) {
    app.get(config.metricsPath, quiet, async (_request, reply) =>
      reply.header('content-type', registry.contentType).send(await registry.metrics()),
    );
  }
}
