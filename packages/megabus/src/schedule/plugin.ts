/**
 * Timed schedules in megabusclt: one Scheduler per plugin with a `schedule` block, its records in
 * `<state_dir>/<plugin>/schedule/`. The plugin's runtime (plugins/runtime.ts) hands each message to `step(plugin)`
 * after the plugin's actions, in the same attempt: a message matching `cancel` cancels its event, any other
 * schedules it (or is recognised as a duplicate). The message leaves the plugin's spool only once that is durable,
 * so nothing acknowledged is lost across a crash.
 *
 * The steps' actions are the plugins' (command, http, spool, log: plugins/actions.ts) and the predefined std_log,
 * std_email and std_shutdown (STD_ACTIONS); the Scheduler bounds them by their timeout and retries them by the
 * plugin's rules (max_attempts, retry_delay, retry_delay_max).
 */
import { join } from 'node:path';
import type { Message } from '@msgbricks/message';
import { parseSelector, type Selector } from '@msgbricks/selector';
import type { MegabusConfig, PluginConfig } from '../config/types';
import { ACTIONS, type ActionFactory, type BuiltAction } from '../plugins/actions';
import type { PluginEvent } from '../plugins/events';
import type { ActionContext, ActionFn } from '../plugins/types';
import type { Clock } from './clock';
import { eventOf, fieldValue, ScheduleError } from './event';
import { type ScheduleCounters, Scheduler } from './scheduler';
import { stdEmail, stdLog, stdShutdown } from './std';

/** A plugin's schedule records, below `<state_dir>/<plugin>/`. */
export const SCHEDULE_DIR = 'schedule';

const list = (v: unknown): string[] | undefined => (v === undefined ? undefined : (v as string[]));

/** std_log, std_email, std_shutdown as action factories (their keys: config/std-actions.ts). */
export const STD_ACTIONS: Readonly<Record<string, ActionFactory>> = {
  std_log: (config, env) => ({
    run: stdLog({
      headers: list(config.headers),
      onLog: (e) =>
        env.emit({
          type: 'log',
          plugin: e.plugin,
          level: 'info',
          text: e.text,
          fields: { key: e.key, step: e.step, header: e.header },
        }),
    }),
  }),
  std_email: (config) => ({
    run: stdEmail({
      to: list(config.to) ?? [],
      ...(config.from === undefined ? {} : { from: config.from as string }),
      ...(config.subject === undefined ? {} : { subject: config.subject as string }),
      ...(config.smtp === undefined ? {} : { smtp: config.smtp as string }),
      ...(config.sendmail === undefined ? {} : { sendmail: config.sendmail as string }),
      ...(config.helo === undefined ? {} : { helo: config.helo as string }),
    }),
  }),
  std_shutdown: (config, env) => ({
    run: stdShutdown({
      enabled: config.enabled === true,
      ...(config.minutes === undefined ? {} : { minutes: config.minutes as number }),
      ...(config.command === undefined ? {} : { command: config.command as string }),
      onShutdown: (e) =>
        env.emit({
          type: 'log',
          plugin: e.plugin,
          level: 'warning',
          text: e.dryRun ? `shutdown: dry run (enabled: false), would run: ${e.command}` : `shutdown: running ${e.command}`,
          fields: { key: e.key, command: e.command, dry_run: e.dryRun },
        }),
    }),
  }),
};

export interface PluginSchedulesOptions {
  config: MegabusConfig;
  onEvent?: (event: PluginEvent) => void;
  /** The schedules' clock (tests). */
  clock?: Clock;
  /** More action types, or replacements (tests), as PluginRunner takes them. */
  actions?: Readonly<Record<string, ActionFactory>>;
  /** Seconds a stop waits for running steps. Default 10. */
  stopTimeout?: number;
}

interface Entry {
  readonly plugin: PluginConfig;
  readonly scheduler: Scheduler;
  readonly cancel: Selector | undefined;
  readonly built: BuiltAction[];
}

/** The Schedulers of a configuration's plugins. */
export class PluginSchedules {
  private readonly entries = new Map<string, Entry>();
  private readonly emit: (event: PluginEvent) => void;
  private readonly clock: Clock | undefined;

  constructor(options: PluginSchedulesOptions) {
    const listener = options.onEvent;
    this.emit = (e) => {
      try {
        listener?.(e);
      } catch {
        // A listener that throws must not break a schedule: events are for logs.
      }
    };
    this.clock = options.clock;
    const factories = { ...ACTIONS, ...STD_ACTIONS, ...options.actions };
    for (const p of options.config.plugins) {
      const s = p.schedule;
      if (s === undefined) continue;
      const built: BuiltAction[] = [];
      const steps = s.steps.map((step) => {
        const factory = factories[step.action.type];
        if (factory === undefined)
          throw new ScheduleError('ERR_SCHEDULE_OPTION', `plugin ${p.name}: no action type ${step.action.type}`);
        const b = factory(step.action, { plugin: p, emit: this.emit });
        built.push(b);
        return {
          name: step.name,
          at: (step.at / 1000) * s.timeScale,
          action: b.run,
          timeout: step.action.timeout ?? p.timeout / 1000,
          ...(step.maxLate === undefined ? {} : { maxLate: (step.maxLate / 1000) * s.timeScale }),
          atMostOnce: step.action.type === 'std_shutdown',
        };
      });
      const scheduler = new Scheduler({
        dir: join(options.config.stateDir, p.name, SCHEDULE_DIR),
        plugin: p.name,
        steps,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
        maxAttempts: p.maxAttempts,
        retryDelay: p.retryDelay / 1000,
        retryDelayMax: p.retryDelayMax / 1000,
        timeout: p.timeout / 1000,
        onFailure: s.onFailure,
        retention: s.retention / 1000,
        stopTimeout: options.stopTimeout ?? 10,
        onEvent: (event) => this.emit({ type: 'schedule', plugin: p.name, event }),
      });
      this.entries.set(p.name, {
        plugin: p,
        scheduler,
        cancel: s.cancel === undefined ? undefined : parseSelector(s.cancel),
        built,
      });
    }
  }

  /** The plugins that have a schedule. */
  get plugins(): string[] {
    return [...this.entries.keys()];
  }

  /** Each schedule's counters, live. */
  counters(): Record<string, ScheduleCounters> {
    return Object.fromEntries([...this.entries].map(([name, e]) => [name, e.scheduler.counters]));
  }

  /** The Scheduler of a plugin (status, tests). */
  scheduler(plugin: string): Scheduler | undefined {
    return this.entries.get(plugin)?.scheduler;
  }

  /** Starts every Scheduler: what a previous run left is re-armed, the steps due meanwhile run at once. */
  async start(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.scheduler.start()));
  }

  /** PluginRunner's `extraSteps`: the step that schedules or cancels, for a plugin with a schedule. */
  readonly steps = (plugin: PluginConfig): ActionFn[] => {
    const e = this.entries.get(plugin.name);
    return e === undefined ? [] : [(message, context) => this.take(e, message, context)];
  };

  private async take(e: Entry, message: Message, context: ActionContext): Promise<void> {
    const s = e.plugin.schedule;
    if (s === undefined) return;
    if (e.cancel?.matches(message.header)) {
      const key = fieldValue(message, s.key);
      if (key === undefined || key === '') throw new ScheduleError('ERR_SCHEDULE_EVENT', `no event key: ${s.key} is missing`);
      await e.scheduler.cancel(key, `cancelled by a message matching ${s.cancel}`);
      return;
    }
    const arrival = arrivalOf(context.name) ?? this.clock?.now() ?? Date.now();
    const event = eventOf(message, { key: s.key, ...(s.time === undefined ? {} : { time: s.time }) }, arrival);
    // Without a time field the event's time is its first message's arrival: the same key again is that event while
    // it is active; once it completed or was cancelled, the same key is the next event (the next power cut in a room).
    const record = s.time === undefined ? e.scheduler.record(event.key) : undefined;
    const time = record?.state === 'active' && record.time !== null ? record.time : event.time;
    await e.scheduler.submit({ key: event.key, time, message });
  }

  /** Stops every Scheduler (running steps get stopTimeout), then releases the actions' resources. */
  async stop(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.scheduler.stop()));
    for (const e of this.entries.values()) for (const b of e.built) await Promise.resolve(b.close?.()).catch(() => undefined);
  }
}

/**
 * When a message reached the plugin's spool, from its element's name: python-dirq's QueueSimple names an element
 * `XXXXXXXX/SSSSSSSSUUUUUR`, seconds and microseconds of its creation in hexadecimal. Undefined for another name.
 */
export function arrivalOf(name: string | undefined): number | undefined {
  const m = name === undefined ? null : /^[0-9a-f]{8}\/([0-9a-f]{8})([0-9a-f]{5})[0-9a-f]$/.exec(name);
  if (m === null) return undefined;
  return Number.parseInt(m[1], 16) * 1000 + Math.floor(Number.parseInt(m[2], 16) / 1000);
}
