/**
 * Counters of one run and their Prometheus text exposition (--metrics-port, a msgbricks addition):
 * `GET /metrics` on the given port.
 */
import * as http from 'node:http';
import type { Delivery, Incoming, Outgoing } from '@msgbricks/agent';
import { program } from './program';

export class Counters {
  in = 0;
  out = 0;
  acked = 0;
  released = 0;
  deadLettered = 0;

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
    return `${lines.join('\n')}\n`;
  }
}

/** Serves `/metrics`; resolves once listening. */
export async function serveMetrics(port: number, counters: Counters): Promise<http.Server> {
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
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return server;
}
