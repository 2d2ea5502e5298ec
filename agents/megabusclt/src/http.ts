/**
 * megabusclt's `/metrics` (Prometheus: per plugin its messages received, acted on, unchanged, ignored, failed
 * attempts, retried, dead-lettered, in flight, waiting in its spool, the brokers connected, the action durations; and
 * prom-client's process set, as every msgbricks command) and `/healthz` (200 when every plugin is connected to at
 * least one broker, 503 otherwise; the plugins as JSON either way), on `metrics` / `--metrics` (loopback unless a
 * host is given).
 */
import * as http from 'node:http';
import { MsgbricksError } from '@msgbricks/errors';
import type { MetricsAddress, PluginRunner } from '@msgbricks/megabus';
import type * as PromClient from 'prom-client';

/** Upper bounds (seconds) of the attempt duration buckets: actions take milliseconds (a log) to minutes (a script). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The plugins' health: each connected to a broker. */
export async function health(runner: PluginRunner): Promise<{ ok: boolean; plugins: Record<string, unknown> }> {
  const queued = await runner.queued();
  const plugins: Record<string, unknown> = {};
  let ok = runner.counters.length > 0;
  for (const c of runner.counters) {
    plugins[c.plugin] = { brokers: c.connected, queued: queued[c.plugin], inFlight: c.runner.inFlight };
    if (c.connected === 0) ok = false;
  }
  return { ok, plugins };
}

function registry(runner: PluginRunner): { register: PromClient.Registry; duration: PromClient.Histogram<'plugin'> } {
  const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = require('prom-client') as typeof PromClient;
  const register = new Registry();
  collectDefaultMetrics({ register });
  const counts: [string, string, (c: PluginRunner['counters'][number]) => number][] = [
    ['messages_received_total', 'Messages written to the plugin spool (acknowledged to their broker).', (c) => c.received],
    ['messages_filtered_total', 'Messages the plugin filter did not select (acknowledged, not kept).', (c) => c.filtered],
    ['messages_acted_total', 'Messages whose actions ran.', (c) => c.acted],
    ['messages_unchanged_total', 'on_change: messages whose value was the last one for their key.', (c) => c.unchanged],
    ['messages_ignored_total', 'on_change: messages without the key or the field.', (c) => c.ignored],
    ['attempts_failed_total', 'Failed attempts (an action failed or timed out).', (c) => c.runner.failed],
    ['messages_retried_total', 'Messages released for a later attempt.', (c) => c.runner.retried],
    ['messages_dead_lettered_total', 'Messages written to the plugin dead-letter spool.', (c) => c.runner.deadLettered],
  ];
  for (const [name, help, read] of counts) {
    new Counter({
      name: `megabusclt_${name}`,
      help,
      labelNames: ['plugin'] as const,
      registers: [register],
      collect() {
        this.reset();
        for (const c of runner.counters) this.inc({ plugin: c.plugin }, read(c));
      },
    });
  }
  const gauges: [string, string, (c: PluginRunner['counters'][number]) => number][] = [
    ['in_flight', 'Messages whose actions are running now.', (c) => c.runner.inFlight],
    ['brokers_connected', 'Brokers the plugin consumer is connected to.', (c) => c.connected],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name: `megabusclt_${name}`,
      help,
      labelNames: ['plugin'] as const,
      registers: [register],
      collect() {
        for (const c of runner.counters) this.set({ plugin: c.plugin }, read(c));
      },
    });
  }
  new Gauge({
    name: 'megabusclt_messages_queued',
    help: 'Messages waiting in the plugin spool.',
    labelNames: ['plugin'] as const,
    registers: [register],
    async collect() {
      for (const [plugin, n] of Object.entries(await runner.queued())) this.set({ plugin }, n);
    },
  });
  const duration = new Histogram({
    name: 'megabusclt_attempt_duration_seconds',
    help: 'Duration of the handled messages (the plugin actions), by plugin.',
    labelNames: ['plugin'] as const,
    buckets: DURATION_BUCKETS,
    registers: [register],
  });
  return { register, duration };
}

/** Serves /metrics and /healthz; resolves with the server once it listens, and `observe` for the durations. */
export async function serveHttp(
  address: MetricsAddress,
  runner: PluginRunner,
): Promise<{ server: http.Server; observe: (plugin: string, seconds: number) => void }> {
  const { register, duration } = registry(runner);
  const server = http.createServer((req, res) => {
    res.shouldKeepAlive = false;
    const url = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (url === '/healthz') {
      health(runner).then(
        (h) =>
          reply(
            h.ok ? 200 : 503,
            'application/json',
            `${JSON.stringify({ status: h.ok ? 'ok' : 'degraded', pid: process.pid, ...h })}\n`,
          ),
        (err: unknown) => reply(500, 'text/plain', `${String(err)}\n`),
      );
    } else if (url === '/metrics') {
      register.metrics().then(
        (text) => reply(200, register.contentType, text),
        (err: unknown) => reply(500, 'text/plain', `cannot collect the metrics: ${String(err)}\n`),
      );
    } else reply(404, 'text/plain', 'not found: /healthz and /metrics only\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new MsgbricksError('ERR_MEGABUSCLT_HTTP', `cannot listen on ${address.host}:${address.port}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  server.unref();
  return { server, observe: (plugin, seconds) => duration.observe({ plugin }, seconds) };
}
