/**
 * Counters of one run and their Prometheus text exposition (--metrics-port, a msgbricks addition):
 * `GET /metrics` on the given port, on --metrics-address (127.0.0.1 unless told otherwise).
 */
import * as http from 'node:http';
import type { Delivery, Incoming, Outgoing } from '@msgbricks/agent';
import { program } from './program';

/** Upper bounds (seconds) of the buckets of the receipt latency histogram. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** A Prometheus histogram: counts per bucket (not cumulative here), sum and count. */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }

  /** The exposition lines of the histogram `name` (cumulative buckets, `le="+Inf"`, `_sum`, `_count`). */
  lines(name: string): string[] {
    const out: string[] = [];
    let cumulative = 0;
    this.bounds.forEach((b, i) => {
      cumulative += this.counts[i] as number;
      out.push(`${name}_bucket{le="${b}"} ${cumulative}`);
    });
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return out;
  }
}

/** What the broker modules tell the metrics (modules.ts). */
export interface BrokerMetrics {
  /** A lost broker connection was re-established. */
  reconnected(side: 'incoming' | 'outgoing'): void;
  /** A SEND's RECEIPT came, this many seconds after the SEND. */
  receipt(seconds: number): void;
}

export class Counters implements BrokerMetrics {
  in = 0;
  out = 0;
  acked = 0;
  released = 0;
  deadLettered = 0;
  readonly reconnects = { incoming: 0, outgoing: 0 };
  readonly receiptLatency = new Histogram(LATENCY_BUCKETS);

  reconnected(side: 'incoming' | 'outgoing'): void {
    this.reconnects[side]++;
  }

  receipt(seconds: number): void {
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

  prometheus(): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, value: number) => {
      lines.push(
        `# HELP ${program().name}_${name} ${help}`,
        `# TYPE ${program().name}_${name} ${type}`,
        `${program().name}_${name} ${value}`,
      );
    };
    metric('messages_in_total', 'counter', 'Messages received from the incoming module.', this.in);
    metric('messages_out_total', 'counter', 'Messages made safe by the outgoing module.', this.out);
    metric('messages_acked_total', 'counter', 'Messages acknowledged to the incoming module.', this.acked);
    metric('messages_released_total', 'counter', 'Messages given back to the incoming module.', this.released);
    metric(
      'messages_dead_lettered_total',
      'counter',
      'Messages and corrupt elements written to the dead-letter queue.',
      this.deadLettered,
    );
    metric('messages_pending', 'gauge', 'Messages received and neither acknowledged nor given back.', this.pending);
    const name = program().name;
    lines.push(
      `# HELP ${name}_reconnects_total Broker connections re-established after a loss, per side.`,
      `# TYPE ${name}_reconnects_total counter`,
      `${name}_reconnects_total{side="incoming"} ${this.reconnects.incoming}`,
      `${name}_reconnects_total{side="outgoing"} ${this.reconnects.outgoing}`,
      `# HELP ${name}_receipt_latency_seconds Time from a SEND to its RECEIPT (outgoing broker).`,
      `# TYPE ${name}_receipt_latency_seconds histogram`,
      ...this.receiptLatency.lines(`${name}_receipt_latency_seconds`),
    );
    return `${lines.join('\n')}\n`;
  }
}

/** Serves `/metrics` on `address` (loopback by default: the figures are nobody else's business); resolves once listening. */
export async function serveMetrics(port: number, counters: Counters, address = '127.0.0.1'): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(counters.prometheus());
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
