/**
 * examples/observability: the compose file, collector config, Prometheus config, alert rules and
 * Grafana dashboard parse, hang together, and name only metrics the proxy really exports.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../src/observability/metrics.js';

const KIT = fileURLToPath(new URL('../../examples/observability/', import.meta.url));
const read = (file: string) => readFileSync(join(KIT, file), 'utf8');
const yaml = (file: string) => parseYaml(read(file)) as Record<string, any>;

/** Every metric name the proxy's /metrics endpoint exports. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createMetrics(true, () => 0);
  const all = await metrics.registry!.getMetricsAsJSON();
  return new Set(all.map((m) => m.name));
}

/** The proxy's metric names an expression uses (histogram series suffixes removed). */
function namesIn(expr: string): string[] {
  return [...expr.matchAll(/\bmcp_session_proxy_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, ''));
}

describe('operator kit (examples/observability)', () => {
  it('the compose file runs the proxy with an OTLP endpoint on the collector, beside Jaeger, Prometheus and Grafana', () => {
    const compose = yaml('docker-compose.yml');
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['mcp-session-proxy', 'otel-collector', 'jaeger', 'prometheus', 'grafana']),
    );
    const env = compose.services['mcp-session-proxy'].environment;
    expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
    expect(['http/protobuf', 'http/json']).toContain(env.OTEL_EXPORTER_OTLP_PROTOCOL);
    // Every file mounted into a container is part of the kit.
    for (const service of Object.values<{ volumes?: string[] }>(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        expect(existsSync(join(KIT, source)), source).toBe(true);
      }
    }
    expect(existsSync(join(KIT, compose.services['mcp-session-proxy'].build, 'Dockerfile'))).toBe(true);
  });

  it('the collector takes OTLP/HTTP and sends traces to Jaeger; every pipeline names defined components', () => {
    const config = yaml('otel-collector.yaml');
    expect(config.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
    for (const pipeline of Object.values<Record<string, string[]>>(config.service.pipelines)) {
      for (const receiver of pipeline.receivers!) expect(config.receivers).toHaveProperty([receiver]);
      for (const processor of pipeline.processors ?? []) expect(config.processors).toHaveProperty([processor]);
      for (const exporter of pipeline.exporters!) expect(config.exporters).toHaveProperty([exporter]);
    }
    expect(config.exporters['otlp/jaeger'].endpoint).toBe('jaeger:4317');
  });

  it('Prometheus scrapes the proxy and loads the alert rules', () => {
    const config = yaml('prometheus.yml');
    expect(config.rule_files).toContain('/etc/prometheus/alerts.yml');
    const proxyJob = config.scrape_configs.find((job: { job_name: string }) => job.job_name === 'mcp-session-proxy');
    expect(proxyJob.static_configs[0].targets).toEqual(['mcp-session-proxy:8080']);
  });

  it('alert rules (replay failures, upstream errors, pool saturation) use only exported metrics', async () => {
    const names = await exportedNames();
    const rules = (
      yaml('alerts.yml').groups as { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[]
    ).flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['McpProxyReplayFailures', 'McpProxyUpstreamErrors', 'McpProxyPoolSaturated']),
    );
    for (const rule of rules) {
      const used = [...namesIn(rule.expr), ...Object.values(rule.annotations).flatMap(namesIn)];
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(names.has(name), `${rule.alert}: ${name}`).toBe(true);
    }
  });

  it('the Grafana dashboard parses, is provisioned, and every panel queries exported metrics', async () => {
    const names = await exportedNames();
    const dashboard = JSON.parse(read('grafana/mcp-session-proxy.json')) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.uid).toBe('mcp-session-proxy');
    expect(dashboard.panels.length).toBeGreaterThan(5);
    const covered = new Set<string>();
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        const used = namesIn(target.expr);
        expect(used.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
        for (const name of used) {
          expect(names.has(name), `${panel.title}: ${name}`).toBe(true);
          covered.add(name);
        }
      }
    }
    // The proxy's own metrics (not the runtime defaults) are all on the dashboard.
    const own = [...names].filter((n) => !/_(process|nodejs)_/.test(n));
    expect(own.filter((n) => !covered.has(n))).toEqual([]);
    const provider = yaml('grafana/provisioning/dashboards/mcp-session-proxy.yml');
    expect(provider.providers[0].options.path).toBe(dirname('/var/lib/grafana/dashboards/mcp-session-proxy.json'));
  });
});
