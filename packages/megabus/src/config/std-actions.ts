/**
 * The keys of the predefined actions of timed schedules (std_log, std_email, std_shutdown), joined to the plugins'
 * action schemas (config/plugins.ts's ACTION_SCHEMAS). Apart from schedule.ts so that plugins.ts can import them
 * without a cycle.
 */
import type { Kind } from './values';

export const STD_ACTION_SCHEMAS: Readonly<
  Record<string, { readonly keys: Readonly<Record<string, Kind>>; readonly required: readonly string[] }>
> = {
  std_log: { keys: { headers: 'list', timeout: 'seconds' }, required: [] },
  std_email: {
    keys: {
      to: 'list',
      from: 'string',
      subject: 'string',
      smtp: 'string',
      sendmail: 'string',
      helo: 'string',
      timeout: 'seconds',
    },
    required: ['to'],
  },
  std_shutdown: { keys: { enabled: 'bool', minutes: 'count', command: 'string', timeout: 'seconds' }, required: [] },
};

/** Action types a plugin may run only as a schedule's step (run at most once there; see the Scheduler). */
export const SCHEDULE_ONLY_ACTIONS: ReadonlySet<string> = new Set(['std_shutdown']);
