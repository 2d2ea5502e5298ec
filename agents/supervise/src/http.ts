/**
 * `/healthz` (200 when every entry is as expected, 503 otherwise; the tree as JSON either way) and Prometheus
 * `/metrics`: per entry its restarts, state, up and uptime, the failures of each supervisor, and prom-client's
 * process set (CPU, RSS, event-loop lag), on `--http [host:]port` (127.0.0.1 unless a host is given).
 */
import * as http from 'node:http';
import { MsgbricksError } from '@msgbricks/errors';
import type { NodeStatus, Supervision } from '@msgbricks/supervisor';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

const STATES = ['stopped', 'starting', 'running', 'stopping', 'backoff', 'exited', 'failed', 'held'] as const;

function flatten(s: NodeStatus, out: NodeStatus[] = []): NodeStatus[] {
  out.push(s);
  for (const c of s.children ?? []) flatten(c, out);
  return out;
}

/** The registry, and `observe` to count the events of a tree. */
export function metricsRegistry(current: () => Supervision): { register: Registry; observe: (sup: Supervision) => void } {
  const register = new Registry();
  collectDefaultMetrics({ register, prefix: 'msgsupervise_' });
  const restarts = new Counter({
    name: 'msgsupervise_restarts_total',
    help: 'Restarts of an entry by its supervisor (a restart_child is not counted)',
    labelNames: ['path'],
    registers: [register],
  });
  const failures = new Counter({
    name: 'msgsupervise_supervisor_failures_total',
    help: 'Times a supervisor gave up (too many restarts by its intensity)',
    labelNames: ['path'],
    registers: [register],
  });
  const observe = (sup: Supervision) => {
    sup.on('restart', (path) => restarts.inc({ path }));
    sup.on('failed', (path) => failures.inc({ path }));
  };
  const all = () => flatten(current().status());
  new Gauge({
    name: 'msgsupervise_up',
    help: '1 when the entry is running, 0 otherwise',
    labelNames: ['path', 'type'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of all()) this.set({ path: s.path, type: s.type }, s.state === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'msgsupervise_state',
    help: 'The state of each entry: 1 for its current state, 0 for the others',
    labelNames: ['path', 'state'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of all()) for (const st of STATES) this.set({ path: s.path, state: st }, s.state === st ? 1 : 0);
    },
  });
  new Gauge({
    name: 'msgsupervise_uptime_seconds',
    help: 'Seconds since the entry last started running (0 when not running)',
    labelNames: ['path'],
    registers: [register],
    collect() {
      this.reset();
      const now = Date.now();
      for (const s of all()) this.set({ path: s.path }, s.state === 'running' ? (now - s.since) / 1000 : 0);
    },
  });
  new Gauge({
    name: 'msgsupervise_expected_ok',
    help: '1 when the entry is in its expected state (check says OK)',
    labelNames: ['path'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of all()) this.set({ path: s.path }, s.ok ? 1 : 0);
    },
  });
  return { register, observe };
}

/** Starts the HTTP endpoint on the tree `current()` returns; resolves with the server and `observe` once it listens. */
export async function serveHttp(
  address: string,
  current: () => Supervision,
): Promise<{ server: http.Server; observe: (sup: Supervision) => void }> {
  const m = /^(?:(.+):)?(\d+)$/.exec(address) as RegExpExecArray;
  const host = m[1] ?? '127.0.0.1';
  const port = Number(m[2]);
  const { register, observe } = metricsRegistry(current);
  const server = http.createServer((req, res) => {
    // One request per connection: a scraper's kept-alive socket closed by the server's idle timeout just as the
    // scraper reuses it fails that scrape ("other side closed"); a scrape every few seconds needs no keep-alive.
    res.shouldKeepAlive = false;
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/healthz') {
      const status = current().status();
      res.writeHead(status.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ status: status.ok ? 'ok' : 'degraded', pid: process.pid, tree: status })}\n`);
      return;
    }
    if (url === '/metrics') {
      register.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': register.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    res.writeHead(404);
    res.end('not found: /healthz and /metrics only\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new MsgbricksError('ERR_SUPERVISE_HTTP', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  return { server, observe };
}
