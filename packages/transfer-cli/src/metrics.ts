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
import { newPipelineStats, type PipelineStats } from '@msgbricks/agent';
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

/** Which side of the transfer a spool is on. */
export type SpoolSide = 'incoming' | 'outgoing' | 'dead-letter';

/** A spool that is unusable now (a persistent file-system error), for the `spool_fault` gauge. */
export interface SpoolFault {
  readonly queue: string;
  readonly side: SpoolSide;
  readonly errno: string;
}

/**
 * The metrics of one transfer run, read from the run's one counts object (the pipeline's stats, which the incoming
 * spool adds to): the log summary, `--statistics`, the live status and the metrics read the same fields, so they
 * cannot disagree. Once `register()`ed, the prom-client counters read them when scraped (`collect()`, as
 * prom-client's own CPU counter does): the per-message cost stays one integer increment in the pipeline.
 */
export class Counters implements BrokerMetrics {
  readonly reconnects = { incoming: 0, outgoing: 0 };
  /** Spools unusable now, by `side queue`. */
  readonly spoolFaults = new Map<string, SpoolFault>();
  /** The receipt latency histogram, once registered: before that nobody could read it. */
  private latency: PromClient.Histogram | undefined;

  constructor(readonly stats: PipelineStats = newPipelineStats()) {}

  get in(): number {
    return this.stats.received;
  }
  get out(): number {
    return this.stats.sent;
  }
  get acked(): number {
    return this.stats.acked;
  }
  get released(): number {
    return this.stats.released;
  }
  get deadLettered(): number {
    return this.stats.deadLettered;
  }

  /** A spool became unusable (`errno`) or, with `errno` undefined, usable again. Counted once per episode. */
  spoolFault(queue: string, side: SpoolSide, errno: string | undefined): void {
    const key = `${side} ${queue}`;
    if (errno === undefined) {
      this.spoolFaults.delete(key);
      return;
    }
    if (!this.spoolFaults.has(key)) this.stats.spoolFaults++;
    this.spoolFaults.set(key, { queue, side, errno });
  }

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
    const s = this.stats;
    const counts: [string, string, () => number][] = [
      ['messages_in_total', 'Messages received from the incoming module.', () => s.received],
      ['messages_out_total', 'Messages made safe by the outgoing module.', () => s.sent],
      ['messages_acked_total', 'Messages acknowledged to the incoming module.', () => s.acked],
      ['messages_released_total', 'Messages given back to the incoming module.', () => s.released],
      [
        'messages_dead_lettered_total',
        'Messages and spool elements (corrupt, symbolic links) written to the dead-letter queue.',
        () => s.deadLettered,
      ],
      ['messages_dropped_total', 'Messages the callback dropped (consumed, not sent).', () => s.dropped],
      ['elements_skipped_total', 'Spool elements that could not be locked or read, stepped over.', () => s.skipped],
      ['spool_faults_total', 'Times a spool became unusable (a persistent file-system error).', () => s.spoolFaults],
      ['messages_filtered_total', 'Messages consumed without being sent: not selected by --filter.', () => s.filtered],
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
    new Gauge({
      name: `${p}_spool_fault`,
      help: 'Spools unusable now (1 per spool, side and error); the side waits and retries until the error clears.',
      labelNames: ['queue', 'side', 'errno'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const f of counters.spoolFaults.values()) this.set({ queue: f.queue, side: f.side, errno: f.errno }, 1);
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
