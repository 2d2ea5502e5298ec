import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Counters, newRegistry, serveMetrics } from '../src/metrics';

function get(port: number, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

async function close(server: http.Server): Promise<void> {
  await new Promise((r) => server.close(r));
}

/** Counters registered in a new registry, and that registry's text. */
function registered(): { c: Counters; text: () => Promise<string> } {
  const c = new Counters();
  const registry = newRegistry();
  c.register(registry);
  return { c, text: () => registry.metrics() };
}

describe('transfer-cli metrics', () => {
  test('metrics - message counters and the pending gauge read the counts of the run', async () => {
    const { c, text: metrics } = registered();
    Object.assign(c.stats, { received: 7, acked: 4, released: 1, sent: 5, deadLettered: 2, dropped: 3, skipped: 6, filtered: 8 });
    let text = await metrics();
    expect(text).toMatch(/^# HELP stompclt_messages_in_total Messages received from the incoming module\.$/m);
    expect(text).toMatch(/^# TYPE stompclt_messages_in_total counter$/m);
    expect(text).toMatch(/^stompclt_messages_in_total 7$/m);
    expect(text).toMatch(/^stompclt_messages_out_total 5$/m);
    expect(text).toMatch(/^stompclt_messages_acked_total 4$/m);
    expect(text).toMatch(/^stompclt_messages_released_total 1$/m);
    expect(text).toMatch(/^stompclt_messages_dead_lettered_total 2$/m);
    expect(text).toMatch(/^stompclt_messages_dropped_total 3$/m);
    expect(text).toMatch(/^stompclt_elements_skipped_total 6$/m);
    expect(text).toMatch(/^stompclt_spool_faults_total 0$/m);
    expect(text).toMatch(/^stompclt_messages_filtered_total 8$/m);
    expect(text).toMatch(/^# TYPE stompclt_messages_pending gauge$/m);
    expect(text).toMatch(/^stompclt_messages_pending 2$/m);
    // A second scrape gives the counts of now, not their sum with the previous ones.
    c.stats.received = 8;
    text = await metrics();
    expect(text).toMatch(/^stompclt_messages_in_total 8$/m);
    expect(text).toMatch(/^stompclt_messages_pending 3$/m);
  });

  test('metrics - a spool fault is a gauge per queue, side and errno while it lasts, counted once per episode', async () => {
    const { c, text: metrics } = registered();
    c.spoolFault('/spool/out', 'outgoing', 'EACCES');
    c.spoolFault('/spool/out', 'outgoing', 'EACCES');
    c.spoolFault('/spool/dlq', 'dead-letter', 'EROFS');
    let text = await metrics();
    expect(text).toMatch(/^# TYPE stompclt_spool_fault gauge$/m);
    expect(text).toMatch(/^stompclt_spool_fault\{queue="\/spool\/out",side="outgoing",errno="EACCES"\} 1$/m);
    expect(text).toMatch(/^stompclt_spool_fault\{queue="\/spool\/dlq",side="dead-letter",errno="EROFS"\} 1$/m);
    expect(text).toMatch(/^stompclt_spool_faults_total 2$/m);
    c.spoolFault('/spool/out', 'outgoing', undefined);
    text = await metrics();
    expect(text).not.toMatch(/^stompclt_spool_fault\{queue="\/spool\/out"/m);
    expect(text).toMatch(/^stompclt_spool_fault\{queue="\/spool\/dlq"/m);
    expect(c.stats.spoolFaults).toBe(2);
  });

  test('metrics - receipt latency (cumulative buckets, sum, count) and reconnects per side, named after the program', async () => {
    const { c, text: metrics } = registered();
    c.receipt(0.0007);
    c.receipt(0.2);
    c.reconnected('outgoing');
    c.reconnected('outgoing');
    const text = await metrics();
    expect(text).toMatch(/^# TYPE stompclt_receipt_latency_seconds histogram$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.0005"\} 0$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.001"\} 1$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.1"\} 1$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.25"\} 2$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="10"\} 2$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="\+Inf"\} 2$/m);
    expect(Number(/^stompclt_receipt_latency_seconds_sum (\S+)$/m.exec(text)?.[1])).toBeCloseTo(0.2007, 12);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_count 2$/m);
    expect(text).toMatch(/^# TYPE stompclt_reconnects_total counter$/m);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="incoming"\} 0$/m);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="outgoing"\} 2$/m);
    // Without serveMetrics, no process metrics: a run without --metrics-port does not pay for them.
    expect(text).not.toMatch(/^process_/m);
  });

  test('metrics - the server listens on 127.0.0.1 unless told otherwise, and answers 404 off /metrics', async () => {
    const registry = newRegistry();
    new Counters().register(registry);
    const server = await serveMetrics(0, registry);
    try {
      const a = server.address() as AddressInfo;
      expect(a.address).toBe('127.0.0.1');
      const r = await get(a.port);
      expect(r.status).toBe(200);
      expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(r.body).toMatch(/^stompclt_messages_in_total 0$/m);
      expect((await get(a.port, '/')).status).toBe(404);
    } finally {
      await close(server);
    }
    const any = await serveMetrics(0, newRegistry(), '0.0.0.0');
    expect((any.address() as AddressInfo).address).toBe('0.0.0.0');
    await close(any);
  });

  test('metrics - a served registry has the default process metrics: CPU, RSS, event-loop lag, GC', async () => {
    const registry = newRegistry();
    new Counters().register(registry);
    const server = await serveMetrics(0, registry);
    try {
      // Some garbage, and a collection, so that the GC histogram has a sample (its observer is asynchronous).
      for (let i = 0; i < 50; i++) new Array(100_000).fill(i);
      // Asked again until the GC sample is in (a loaded machine may take longer than a fixed delay), for 10 s at most.
      const gcCount = /^nodejs_gc_duration_seconds_count\{kind="(minor|major|incremental|weakcb)"\} [1-9]\d*$/m;
      let body = '';
      for (const until = Date.now() + 10_000; !gcCount.test(body) && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 50));
        ({ body } = await get((server.address() as AddressInfo).port));
      }
      expect(body).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
      expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(body).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
      expect(body).toMatch(/^process_start_time_seconds \d+$/m);
      expect(body).toMatch(/^process_open_fds \d+$/m);
      expect(body).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
      expect(body).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
      expect(body).toMatch(/^nodejs_heap_size_used_bytes [1-9]\d*$/m);
      expect(body).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
      expect(body).toMatch(gcCount);
      // And the command's own metrics beside them.
      expect(body).toMatch(/^stompclt_messages_pending 0$/m);
    } finally {
      await close(server);
    }
  });
  test('metrics - counting without metrics served does not load prom-client (100-250 ms of start-up)', () => {
    // In a plain Node process on the built code: jest's module registry would hide what a command loads.
    const dist = join(__dirname, '..', 'dist', 'metrics.js');
    const script = `
      const { Counters, newRegistry } = require(${JSON.stringify(dist)});
      const loaded = () => Object.keys(require.cache).some((f) => f.includes('/node_modules/prom-client/'));
      const c = new Counters();
      c.stats.received++; c.receipt(0.001); c.reconnected('outgoing');
      const before = loaded();
      c.register(newRegistry());
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
  });
});
