/**
 * Prometheus metrics (--metrics-port, a msgbricks addition), with prom-client: `GET /metrics` on the given port, on
 * --metrics-address (127.0.0.1 unless told otherwise).
 *
 * Two parts. `serveMetrics` is for every long-running command (the transfer agents now, later megabusclt, the
 * gateway, the supervisor): it adds prom-client's default process metrics (CPU, RSS, heap, event-loop lag, GC,
 * handles, file descriptors) to the command's registry and serves it, so that all of them expose the same process
 * set next to their own metrics. `Counters` holds the transfer's own metrics.
 */
import * as http from 'node:http';
import type { Delivery, Incoming, Outgoing } from '@msgbricks/agent';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { program } from './program';

export { Registry } from 'prom-client';

/** Upper bounds (seconds) of the buckets of the receipt latency histogram. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** What the broker modules tell the metrics (modules.ts). */
export interface BrokerMetrics {
  /** A lost broker connection was re-established. */
  reconnected(side: 'incoming' | 'outgoing'): void;
  /** A SEND's RECEIPT came, this many seconds after the SEND. */
  receipt(seconds: number): void;
}

/**
 * A counter whose value is read from `read()` when scraped. The counts live in plain fields: the per-message cost
 * is one integer increment, and the live status line reads the same numbers without prom-client's asynchronous get().
 */
function countedBy(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The counts of one transfer run and their metrics, registered in `registry` (the live status reads the fields). */
export class Counters implements BrokerMetrics {
  in = 0;
  out = 0;
  acked = 0;
  released = 0;
  deadLettered = 0;
  private readonly reconnects: Record<'incoming' | 'outgoing', { inc(): void }>;
  private readonly receiptLatency: Histogram;

  constructor(readonly registry: Registry = new Registry()) {
    const p = program().name;
    countedBy(registry, `${p}_messages_in_total`, 'Messages received from the incoming module.', () => this.in);
    countedBy(registry, `${p}_messages_out_total`, 'Messages made safe by the outgoing module.', () => this.out);
    countedBy(registry, `${p}_messages_acked_total`, 'Messages acknowledged to the incoming module.', () => this.acked);
    countedBy(registry, `${p}_messages_released_total`, 'Messages given back to the incoming module.', () => this.released);
    countedBy(
      registry,
      `${p}_messages_dead_lettered_total`,
      'Messages and corrupt elements written to the dead-letter queue.',
      () => this.deadLettered,
    );
    const counters = this;
    new Gauge({
      name: `${p}_messages_pending`,
      help: 'Messages received and neither acknowledged nor given back.',
      registers: [registry],
      collect() {
        this.set(counters.pending);
      },
    });
    const reconnects = new Counter({
      name: `${p}_reconnects_total`,
      help: 'Broker connections re-established after a loss, per side.',
      labelNames: ['side'] as const,
      registers: [registry],
    });
    // Children bound once (no label lookup per event), both sides shown from the start (at 0).
    this.reconnects = { incoming: reconnects.labels('incoming'), outgoing: reconnects.labels('outgoing') };
    reconnects.labels('incoming').inc(0);
    reconnects.labels('outgoing').inc(0);
    this.receiptLatency = new Histogram({
      name: `${p}_receipt_latency_seconds`,
      help: 'Time from a SEND to its RECEIPT (outgoing broker).',
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
  }

  reconnected(side: 'incoming' | 'outgoing'): void {
    this.reconnects[side].inc();
  }

  receipt(seconds: number): void {
    // About 0.4 us per receipt with prom-client 15 (no labels), against the ~170 us a message costs the agent.
    this.receiptLatency.observe(seconds);
  }

  get pending(): number {
    return this.in - this.acked - this.released;
  }

  /** The incoming module, counting deliveries, acks and releases. */
  incoming(inner: Incoming): Incoming {
    return {
      description: inner.description,
      open: () => inner.open(),
      close: () => inner.close(),
      next: async (): Promise<Delivery | null | undefined> => {
        const d = await inner.next();
        if (d) this.in++;
        return d;
      },
      ack: async (id: string) => {
        await inner.ack(id);
        this.acked++;
      },
      release: async (id: string) => {
        await inner.release(id);
        this.released++;
      },
    };
  }

  /** An outgoing module, counting what it made safe into `field`. */
  outgoing(inner: Outgoing, field: 'out' | 'deadLettered'): Outgoing {
    return {
      description: inner.description,
      open: () => inner.open(),
      close: () => inner.close(),
      send: async (m) => {
        await inner.send(m);
        this[field]++;
      },
    };
  }

  /** The Prometheus text exposition of the registry (with the process metrics once serveMetrics added them). */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Adds the default process metrics to `registry` and serves it at `/metrics` on `address` (loopback by default: the
 * figures are nobody else's business); resolves once listening. Call it once per registry (prom-client refuses a
 * metric registered twice). The process metrics are added here, not with the registry, because the event-loop lag
 * monitor samples every 10 ms: a command pays for it only when its metrics are served.
 */
export async function serveMetrics(port: number, registry: Registry, address = '127.0.0.1'): Promise<http.Server> {
  collectDefaultMetrics({ register: registry });
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`cannot collect the metrics: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return server;
}
