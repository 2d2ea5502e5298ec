/**
 * megabusclt's timed schedules: their log lines and their statistics. The schedules themselves are
 * @msgbricks/megabus's PluginSchedules, which run.ts starts before the plugins and stops after them.
 */
import type { PluginSchedules, ScheduleCounters, ScheduleEvent } from '@msgbricks/megabus';
import type { Logger } from '@msgbricks/transfer-cli';
import type * as PromClient from 'prom-client';

const iso = (ms: number): string => new Date(ms).toISOString();

/** One log line per schedule event: what an operator follows a power cut by. */
export function logScheduleEvent(logger: Logger, plugin: string, e: ScheduleEvent): void {
  switch (e.type) {
    case 'scheduled':
      // N.B. not `time`: the log line's own time has that name.
      logger.info({ plugin, key: e.key, eventTime: iso(e.time), steps: e.steps }, 'event scheduled');
      break;
    case 'rescheduled':
      logger.info({ plugin, key: e.key, eventTime: iso(e.time), previous: iso(e.previous) }, 'event rescheduled');
      break;
    case 'duplicate':
      logger.debug({ plugin, key: e.key }, 'event already scheduled');
      break;
    case 'ignored':
      logger.info({ plugin, key: e.key, reason: e.reason }, 'event ignored');
      break;
    case 'cancelled':
      logger.info({ plugin, key: e.key, steps: e.steps, early: e.early }, 'event cancelled');
      break;
    case 'step-started':
      logger.info({ plugin, key: e.key, step: e.step, attempt: e.attempt, late: e.late / 1000 }, 'step started');
      break;
    case 'step-done':
      logger.info({ plugin, key: e.key, step: e.step, attempt: e.attempt, seconds: e.seconds }, 'step done');
      break;
    case 'step-failed':
      if (e.retryAt === undefined)
        logger.error({ plugin, key: e.key, step: e.step, attempt: e.attempt, error: e.error.message }, 'step failed: given up');
      else
        logger.warn(
          { plugin, key: e.key, step: e.step, attempt: e.attempt, error: e.error.message, retry: iso(e.retryAt) },
          'step failed',
        );
      break;
    case 'step-retry-later':
      logger.info({ plugin, key: e.key, step: e.step, retry: iso(e.retryAt) }, 'step retry later');
      break;
    case 'step-missed':
      logger.warn({ plugin, key: e.key, step: e.step, late: e.late / 1000 }, 'step missed: later than its max_late');
      break;
    case 'step-interrupted':
      logger.warn(
        { plugin, key: e.key, step: e.step, attempt: e.attempt, rerun: e.rerun },
        e.rerun ? 'step interrupted by a crash: run again' : 'step interrupted by a crash: not run again',
      );
      break;
    case 'completed':
      logger.info({ plugin, key: e.key, done: e.done, failed: e.failed, missed: e.missed }, 'event completed');
      break;
    case 'removed':
      logger.debug({ plugin, key: e.key }, 'event record removed');
      break;
    case 'corrupt':
      logger.error({ plugin, file: e.file, movedTo: e.movedTo, error: e.error }, 'corrupt schedule record moved aside');
      break;
    case 'problem':
      logger.warn({ plugin, ...(e.key === undefined ? {} : { key: e.key }), error: e.error.message }, 'schedule problem');
      break;
  }
}

/** The schedules' statistics line, one per plugin with a schedule. */
export function scheduleStatistics(logger: Logger, schedules: PluginSchedules): void {
  for (const [plugin, c] of Object.entries(schedules.counters())) logger.info({ plugin, ...c }, 'schedule statistics');
}

type Read = (c: ScheduleCounters) => number;

/** The schedules' metrics, per plugin: events and steps by outcome (counters), events active and steps running. */
export function scheduleMetrics(register: PromClient.Registry, client: typeof PromClient, schedules: PluginSchedules): void {
  const labelled = (name: string, help: string, outcomes: Record<string, Read>): void => {
    new client.Counter({
      name,
      help,
      labelNames: ['plugin', 'outcome'] as const,
      registers: [register],
      collect() {
        this.reset();
        for (const [plugin, c] of Object.entries(schedules.counters()))
          for (const [outcome, read] of Object.entries(outcomes)) this.inc({ plugin, outcome }, read(c));
      },
    });
  };
  labelled('megabusclt_schedule_events_total', 'Timed schedule events, by what became of them.', {
    scheduled: (c) => c.scheduled,
    rescheduled: (c) => c.rescheduled,
    duplicate: (c) => c.duplicates,
    cancelled: (c) => c.cancelled,
    completed: (c) => c.completed,
    corrupt: (c) => c.corrupt,
  });
  labelled('megabusclt_schedule_steps_total', 'Timed schedule steps, by outcome (retried: failed attempts retried).', {
    done: (c) => c.stepsDone,
    failed: (c) => c.stepsFailed,
    retried: (c) => c.stepsRetried,
    missed: (c) => c.stepsMissed,
    interrupted: (c) => c.stepsInterrupted,
  });
  const gauges: [string, string, Read][] = [
    ['megabusclt_schedule_events_active', 'Timed schedule events with steps left.', (c) => c.active],
    ['megabusclt_schedule_steps_running', 'Timed schedule steps running now.', (c) => c.running],
  ];
  for (const [name, help, read] of gauges)
    new client.Gauge({
      name,
      help,
      labelNames: ['plugin'] as const,
      registers: [register],
      collect() {
        for (const [plugin, c] of Object.entries(schedules.counters())) this.set({ plugin }, read(c));
      },
    });
}
