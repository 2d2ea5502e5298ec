/** msghandle's Prometheus metrics (--metrics-port): the runner's counters, read when scraped, and the durations. */
import type { Consumer } from '@msgbricks/handler';
import type * as PromClient from 'prom-client';

/** Upper bounds (seconds) of the handler duration buckets: a command per message takes milliseconds to minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function registerMetrics(registry: PromClient.Registry, consumer: Consumer): void {
  const { Counter, Gauge, Histogram } = require('prom-client') as typeof PromClient;
  const c = consumer.counters;
  const counts: [string, string, () => number][] = [
    ['messages_handled_total', 'Messages handled and removed from the spool.', () => c.handled],
    ['attempts_failed_total', 'Failed attempts (the handler threw, the command failed, the time-out).', () => c.failed],
    ['messages_retried_total', 'Messages released for a later attempt.', () => c.retried],
    ['messages_dead_lettered_total', 'Messages and corrupt elements written to the dead-letter queue.', () => c.deadLettered],
  ];
  for (const [name, help, read] of counts) {
    new Counter({
      name: `msghandle_${name}`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
  new Gauge({
    name: 'msghandle_in_flight',
    help: 'Handlers running now.',
    registers: [registry],
    collect() {
      this.set(c.inFlight);
    },
  });
  const duration = new Histogram({
    name: 'msghandle_handler_duration_seconds',
    help: 'Duration of the attempts, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  consumer.on('handled', (e: { seconds: number }) => duration.observe({ outcome: 'handled' }, e.seconds));
  consumer.on('failed', (e: { seconds: number }) => duration.observe({ outcome: 'failed' }, e.seconds));
}
