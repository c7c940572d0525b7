/**
 * Every service's operations endpoint (HTTP on loopback by default):
 * - `GET /metrics` — Prometheus text format from the service's own registry
 *   (prom-client: the exposition format, histograms and default process metrics
 *   are its job, not ours);
 * - `GET /healthz` — 200 while the process serves requests (liveness);
 * - `GET /readyz` — 200 when the service's readiness checks all pass, else 503;
 *   the body names each check either way.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { repoRoot } from './local/cache.js';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Named checks; a string is a failing check's reason. */
export type ReadinessChecks = Record<string, true | string>;

export interface OpsServer {
  url: string;
  port: number;
  stop: () => Promise<void>;
}

/**
 * A registry with the process's default metrics, labelled with the service, and
 * `alcor_build_info{service, instance_id, version, node}` = 1. No `instance` label:
 * that one is the scraper's (Prometheus would rename ours `exported_instance`).
 */
export function createRegistry(service: string, instanceId: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'alcor_build_info',
    help: 'Always 1: the version of this service and the instance it runs as',
    labelNames: ['instance_id', 'version', 'node'],
    registers: [registry],
  }).set({ instance_id: instanceId, version: buildVersion(), node: process.version }, 1);
  return registry;
}

let version: string | undefined;
/** The package version (package.json at the repository root). */
function buildVersion(): string {
  if (version === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
        version?: string;
      };
      version = pkg.version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/** Seconds buckets of the stage histograms: 0.5 ms to 60 s. */
const STAGE_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * `alcor_stage_seconds{stage, …}`: the latency of one stage of an intent's way
 * (accept → decide → publish → relay → apply → ack), the same name in every service.
 */
export function stageHistogram(registry: Registry, labelNames: string[] = []): Histogram {
  return new Histogram({
    name: 'alcor_stage_seconds',
    help: 'Latency of one stage of an intent: decide, publish, relay, apply, ack, programmed',
    labelNames: ['stage', ...labelNames],
    buckets: STAGE_BUCKETS,
    registers: [registry],
  });
}

/** A gauge read at scrape time: one value, or one per label set. */
export function liveGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Array<[Record<string, string>, number]>,
  labelNames: string[] = [],
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const value = read();
      if (typeof value === 'number') return void this.set(value);
      this.reset();
      for (const [labels, n] of value) this.set(labels, n);
    },
  });
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A counter's help, or its name (when `<prefix>_<field>_total` would stutter) and help. */
export type CounterSpec = string | { name: string; help: string };

/**
 * Counters read at scrape time from plain counter objects the service keeps
 * anyway (tests and benchmarks read those): `<prefix>_<field>_total` unless named,
 * each with its written help, one series per label set that `read()` returns.
 */
export function objectCounters<T extends object>(
  registry: Registry,
  prefix: string,
  fields: Readonly<Partial<Record<keyof T & string, CounterSpec>>>,
  read: () => Array<[Record<string, string>, T]>,
  labelNames: string[] = [],
): void {
  for (const [field, spec] of Object.entries(fields) as Array<[keyof T & string, CounterSpec]>) {
    new Counter({
      name: typeof spec === 'string' ? `${prefix}_${snake(field)}_total` : spec.name,
      help: typeof spec === 'string' ? spec : spec.help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, counts] of read()) this.inc(labels, Number(counts[field]));
      },
    });
  }
}

export async function startOpsServer(options: {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  registry: Pick<Registry, 'contentType' | 'metrics'>;
  readiness: () => ReadinessChecks | Promise<ReadinessChecks>;
  logger: Logger;
}): Promise<OpsServer> {
  const { registry, readiness, logger } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    void (async () => {
      try {
        if (path === '/metrics') {
          send(200, registry.contentType, await registry.metrics());
        } else if (path === '/healthz') {
          send(200, 'application/json', '{"status":"ok"}\n');
        } else if (path === '/readyz') {
          const checks = await readiness();
          const ready = Object.values(checks).every((c) => c === true);
          send(
            ready ? 200 : 503,
            'application/json',
            `${JSON.stringify({ status: ready ? 'ready' : 'not_ready', checks })}\n`,
          );
        } else {
          send(404, 'text/plain', 'not found: /metrics, /healthz, /readyz\n');
        }
      } catch (err) {
        logger.warn({ err, path }, 'ops request failed');
        send(500, 'text/plain', `${(err as Error).message}\n`);
      }
    })();
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${host}:${port}`;
  logger.info({ url }, 'ops endpoint: /metrics /healthz /readyz');
  return {
    url,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The series of one metric in a Prometheus text exposition: labels and value. */
export function metricSamples(
  text: string,
  name: string,
): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels: Record<string, string> = {};
    const close = line.lastIndexOf('}');
    if (line[name.length] === '{') {
      for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g))
        labels[m[1]!] = m[2]!;
    }
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

/** stage → bucket upper bound → cumulative count, summed over the texts given. */
function stageBuckets(texts: readonly string[]): Map<string, Map<number, number>> {
  const buckets = new Map<string, Map<number, number>>();
  for (const text of texts) {
    for (const { labels, value } of metricSamples(text, 'alcor_stage_seconds_bucket')) {
      const stage = labels.stage;
      if (!stage || labels.le === undefined) continue;
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      const byLe = buckets.get(stage) ?? new Map<number, number>();
      byLe.set(le, (byLe.get(le) ?? 0) + value);
      buckets.set(stage, byLe);
    }
  }
  return buckets;
}

/**
 * Per stage of `alcor_stage_seconds` (summed over every other label and every
 * text given, e.g. several services' /metrics): how many, and the p50 and p99 as
 * the upper bound of the bucket they fall in (seconds; Infinity past the last).
 * With `since` (the same services' texts taken earlier), only what was observed
 * in between counts.
 */
export function stageQuantiles(
  texts: readonly string[],
  since: readonly string[] = [],
): Map<string, { count: number; p50: number; p99: number }> {
  const buckets = stageBuckets(texts);
  for (const [stage, byLe] of stageBuckets(since)) {
    const now = buckets.get(stage);
    if (now) for (const [le, n] of byLe) now.set(le, (now.get(le) ?? 0) - n);
  }
  const out = new Map<string, { count: number; p50: number; p99: number }>();
  for (const [stage, byLe] of buckets) {
    const sorted = [...byLe].sort(([a], [b]) => a - b);
    const count = sorted.at(-1)?.[1] ?? 0;
    const at = (q: number): number => sorted.find(([, n]) => n >= q * count)?.[0] ?? Infinity;
    if (count > 0) out.set(stage, { count, p50: at(0.5), p99: at(0.99) });
  }
  return out;
}
