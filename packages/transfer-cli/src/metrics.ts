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
import type * as PromClient from 'prom-client';
import { program } from './program';

export type { Registry } from 'prom-client';

/**
 * prom-client, loaded at the first use: requiring it costs 100-250 ms of start-up on the 2-core test machine, which a
 * run without --metrics-port (and `--help`) should not pay.
 */
function promClient(): typeof PromClient {
  return require('prom-client') as typeof PromClient;
}

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
 * The counts of one transfer run (the live status reads them) and, once `register()`ed, their Prometheus metrics.
 * The counts live in plain fields: the per-message cost is one integer increment, and the live status line reads
 * them without prom-client's asynchronous get(); the prom-client counters read them when scraped (`collect()`, as
 * prom-client's own CPU counter does).
 */
export class Counters implements BrokerMetrics {
  in = 0;
  out = 0;
  acked = 0;
  released = 0;
  deadLettered = 0;
  /** Consumed without being sent: not selected by --filter. */
  filtered = 0;
  readonly reconnects = { incoming: 0, outgoing: 0 };
  /** The receipt latency histogram, once registered: before that nobody could read it. */
  private latency: PromClient.Histogram | undefined;

  reconnected(side: 'incoming' | 'outgoing'): void {
    this.reconnects[side]++;
  }

  receipt(seconds: number): void {
    // About 0.4 us per receipt with prom-client 15 (no labels), against the ~170 us a message costs the agent.
    this.latency?.observe(seconds);
  }

  /** Registers the run's metrics, named after the program (`stompclt_messages_in_total`...), in `registry`. */
  register(registry: PromClient.Registry): void {
    const { Counter, Gauge, Histogram } = promClient();
    const p = program().name;
    const counts: [string, string, () => number][] = [
      ['messages_in_total', 'Messages received from the incoming module.', () => this.in],
      ['messages_out_total', 'Messages made safe by the outgoing module.', () => this.out],
      ['messages_acked_total', 'Messages acknowledged to the incoming module.', () => this.acked],
      ['messages_released_total', 'Messages given back to the incoming module.', () => this.released],
      [
        'messages_dead_lettered_total',
        'Messages and corrupt elements written to the dead-letter queue.',
        () => this.deadLettered,
      ],
      ['messages_filtered_total', 'Messages consumed without being sent: not selected by --filter.', () => this.filtered],
    ];
    for (const [name, help, read] of counts) {
      new Counter({
        name: `${p}_${name}`,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    }
    const counters = this;
    new Gauge({
      name: `${p}_messages_pending`,
      help: 'Messages received and neither acknowledged nor given back.',
      registers: [registry],
      collect() {
        this.set(counters.pending);
      },
    });
    new Counter({
      name: `${p}_reconnects_total`,
      help: 'Broker connections re-established after a loss, per side.',
      labelNames: ['side'] as const,
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ side: 'incoming' }, counters.reconnects.incoming);
        this.inc({ side: 'outgoing' }, counters.reconnects.outgoing);
      },
    });
    this.latency = new Histogram({
      name: `${p}_receipt_latency_seconds`,
      help: 'Time from a SEND to its RECEIPT (outgoing broker).',
      buckets: [...LATENCY_BUCKETS],
      registers: [registry],
    });
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
      onArrival: inner.onArrival?.bind(inner),
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
      flush: inner.flush?.bind(inner),
      send: async (m) => {
        await inner.send(m);
        this[field]++;
      },
    };
  }
}

/** A new prom-client registry (prom-client loaded then, not before). */
export function newRegistry(): PromClient.Registry {
  return new (promClient().Registry)();
}

/**
 * Adds the default process metrics to `registry` and serves it at `/metrics` on `address` (loopback by default: the
 * figures are nobody else's business); resolves once listening. Call it once per registry (prom-client refuses a
 * metric registered twice). The process metrics are added here, not with the registry, because the event-loop lag
 * monitor samples every 10 ms: a command pays for it only when its metrics are served.
 */
export async function serveMetrics(port: number, registry: PromClient.Registry, address = '127.0.0.1'): Promise<http.Server> {
  promClient().collectDefaultMetrics({ register: registry });
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
