/**
 * megabusclt's plugins at run time. Per plugin:
 *
 *   brokers --(Consumer, the plugin's destination)--> <state_dir>/<plugin>/queue --(handler runner)--> actions
 *
 * The Consumer writes each message into the plugin's spool (fsync'd) and acknowledges it only then, so what a broker
 * let go of is on disk; @msgbricks/handler's consume() runs the plugin over that spool with its rules (attempt
 * records kept across restarts, backoff, dead letter after max_attempts with the reason, stop). The plugin's
 * handler: on_change's gate (onchange.ts) if configured, then the actions in order, each bounded by its timeout. A
 * failed action fails the attempt: the next attempt runs the actions again from the first (make them idempotent).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { errorOf } from '@msgbricks/errors';
import { consume, type HandlerContext, type HandlerCounters, RetryLaterError, type Consumer as Runner } from '@msgbricks/handler';
import { DQS, type Message } from '@msgbricks/message';
import type { MegabusConfig, PluginConfig } from '../config/types';
import { Consumer } from '../consumer';
import { ActionError, StateError } from '../errors';
import type { MegabusEvent } from '../events';
import type { Resolver } from '../resolver';
import { fieldValue } from '../schedule/event';
import { ACTIONS, type ActionFactory, type BuiltAction, boundAction } from './actions';
import type { PluginEvent, PluginEventListener } from './events';
import { ChangeState } from './onchange';
import type { ActionContext, ActionFn } from './types';

/** The plugin's spool, below `<state_dir>/<plugin>/`. */
export const QUEUE_DIR = 'queue';

export interface PluginRunnerOptions {
  config: MegabusConfig;
  /** Resolves the alias (default: the system's resolver). */
  resolver?: Resolver;
  onEvent?: PluginEventListener;
  /** More action types, or replacements (tests; the timed schedules' std_* actions). */
  actions?: Readonly<Record<string, ActionFactory>>;
  /**
   * Steps run after a plugin's actions for each message, as part of the same attempt (the timed schedules' hook: a
   * plugin with a `schedule` block registers the event there). Default none.
   */
  extraSteps?: (plugin: PluginConfig) => ActionFn[];
  /** Milliseconds a stop waits for the actions in flight (then their signal fires). Default 10000. */
  stopTimeout?: number;
  /** Milliseconds between rescans of an idle plugin spool (file-system events wake it before). Default 2000. */
  rescanInterval?: number;
}

/** One plugin's figures (the runner's counters plus what the plugin adds). */
export interface PluginCounters {
  readonly plugin: string;
  /** Messages written to the plugin's spool (and acknowledged to their broker). */
  received: number;
  /** Messages its filter (the plugin's selector keys, else the top level's) did not select: acknowledged, not kept. */
  filtered: number;
  /** Messages whose actions ran. */
  acted: number;
  /** on_change: messages whose value was the last one for their key. */
  unchanged: number;
  /** on_change: messages without the key or the field. */
  ignored: number;
  /** The handler runner's: handled, failed, retried, deadLettered, inFlight, attempts, durationSeconds. */
  readonly runner: HandlerCounters;
  /** Brokers this plugin's consumer is connected to now. */
  connected: number;
}

interface Running {
  readonly config: PluginConfig;
  readonly counters: PluginCounters;
  readonly consumer: Consumer;
  readonly runner: Runner;
  readonly actions: BuiltAction[];
  readonly brokers: Set<string>;
}

/** The plugins of a configuration, run together; one PluginRunner per process and state_dir. */
export class PluginRunner {
  readonly config: MegabusConfig;
  private readonly options: PluginRunnerOptions;
  private readonly emit: (event: PluginEvent) => void;
  private readonly running: Running[] = [];
  private stopping: Promise<void> | undefined;
  private failed: ((err: unknown) => void) | undefined;
  /** Rejects when a plugin's spool fails (removed, I/O errors): megabusclt stops then. */
  readonly failure: Promise<never>;

  constructor(options: PluginRunnerOptions) {
    this.options = options;
    this.config = options.config;
    const listener = options.onEvent;
    this.emit = (e) => {
      try {
        listener?.(e);
      } catch {
        // A listener that throws must not break the plugins: events are for logs.
      }
    };
    this.failure = new Promise<never>((_, reject) => {
      this.failed = reject;
    });
    this.failure.catch(() => undefined);
  }

  /** The plugins' figures, live. */
  get counters(): readonly PluginCounters[] {
    return this.running.map((r) => r.counters);
  }

  /** Messages waiting in each plugin's spool (for the statistics line and /healthz). */
  async queued(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of this.running) out[r.config.name] = await (r.runner.queue as DQS).count().catch(() => -1);
    return out;
  }

  /**
   * Starts every plugin: its directories, its on_change state, its actions, its runner over the spool (what a
   * previous run left is handled first), then its consumer. Throws (StateError, a broker settings error) when one
   * cannot start; those started are stopped again.
   */
  async start(): Promise<void> {
    if (this.config.plugins.length === 0)
      throw new StateError('ERR_MEGABUS_NO_PLUGIN', `${this.config.file ?? 'the configuration'}: no plugin configured`);
    try {
      for (const p of this.config.plugins) this.running.push(await this.startPlugin(p));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startPlugin(p: PluginConfig): Promise<Running> {
    const dir = join(this.config.stateDir, p.name);
    const queuePath = join(dir, QUEUE_DIR);
    for (const d of [dir, queuePath, p.deadLetter]) {
      try {
        fs.mkdirSync(d, { recursive: true, mode: 0o750 });
      } catch (err) {
        throw new StateError('ERR_MEGABUS_STATE', `plugin ${p.name}: cannot mkdir ${d}: ${(err as NodeJS.ErrnoException).code}`, {
          cause: err,
        });
      }
    }
    const changes = p.onChange === undefined ? undefined : await ChangeState.open(dir);
    const factories = { ...ACTIONS, ...this.options.actions };
    const actions: BuiltAction[] = [];
    const closeActions = async () => {
      for (const a of actions) await Promise.resolve(a.close?.()).catch(() => undefined);
    };
    const steps: { fn: ActionFn; label: string }[] = [];
    try {
      p.actions.forEach((a, i) => {
        const factory = factories[a.type];
        if (factory === undefined) throw new ActionError('ERR_MEGABUS_ACTION', `plugin ${p.name}: no action type ${a.type}`);
        const built = factory(a, { plugin: p, emit: this.emit });
        actions.push(built);
        const label = `action ${i + 1} (${a.type})`;
        steps.push({ fn: boundAction(built.run, label, (a.timeout ?? p.timeout / 1000) * 1000), label });
      });
      for (const [i, fn] of (this.options.extraSteps?.(p) ?? []).entries()) steps.push({ fn, label: `step ${i + 1}` });
    } catch (err) {
      // Not in `running` yet: stop() would not close those built before the one that failed.
      await closeActions();
      throw err;
    }

    // The plugin's own figures; with the runner's once it exists (counters, below), the same object.
    const tally = { received: 0, filtered: 0, acted: 0, unchanged: 0, ignored: 0, connected: 0 };
    const runAll = async (message: Message, ctx: ActionContext): Promise<void> => {
      for (const s of steps) {
        try {
          await s.fn(message, ctx);
        } catch (err) {
          throw labelled(err, s.label);
        }
      }
    };
    const handler = async (message: Message, h: HandlerContext): Promise<void> => {
      const started = performance.now();
      const ctx: ActionContext = { plugin: p.name, attempt: h.attempt, signal: h.signal, name: h.name };
      let outcome: 'acted' | 'unchanged' | 'ignored' = 'acted';
      if (changes !== undefined && p.onChange !== undefined) {
        const key = fieldValue(message, p.onChange.key);
        const value = fieldValue(message, p.onChange.field);
        if (key === undefined || value === undefined) outcome = 'ignored';
        else if (!(await changes.change(key, value, () => runAll(message, ctx)))) outcome = 'unchanged';
      } else await runAll(message, ctx);
      tally[outcome]++;
      this.emit({
        type: 'handled',
        plugin: p.name,
        element: h.name,
        attempt: h.attempt,
        outcome,
        seconds: (performance.now() - started) / 1000,
      });
    };
    const queue = new DQS(queuePath, { fsync: true });
    // Locks left by a previous run that died (SIGKILL, a crash) are broken now rather than after max_lock (600 s):
    // the spool is this process's alone (one process per state_dir: megabusclt holds its lock).
    await queue.purge({ maxlock: 0.001 }).catch(async (err: unknown) => {
      await closeActions();
      throw err;
    });
    const runner = consume(queue, handler, {
      concurrency: p.concurrency,
      maxAttempts: p.maxAttempts,
      deadLetter: new DQS(p.deadLetter, { fsync: true }),
      backoff: { initial: p.retryDelay, factor: 2, max: p.retryDelayMax },
      stopSignals: [],
      stopTimeout: this.options.stopTimeout ?? 10_000,
      ...(this.options.rescanInterval === undefined ? {} : { rescanInterval: this.options.rescanInterval }),
    });
    const counters: PluginCounters = Object.assign(tally, { plugin: p.name, runner: runner.counters });
    this.forward(p.name, runner);
    runner.done.catch((err: unknown) => this.failed?.(err));

    const brokers = new Set<string>();
    const destination = p.destination ?? this.config.consumer.destination ?? this.config.destination;
    // The plugin's own consumer: its destination, written to its spool (acknowledged once durable there).
    const writer = new DQS(queuePath, { fsync: true });
    let consumer: Consumer | undefined;
    try {
      consumer = new Consumer({
        config: { ...this.config, consumer: { ...this.config.consumer, destination, spool: undefined } },
        filtering: p.filter ?? this.config.filter,
        ...(this.options.resolver === undefined ? {} : { resolver: this.options.resolver }),
        handler: async (m) => {
          const element = await writer.addMessage(m);
          counters.received++;
          this.emit({ type: 'received', plugin: p.name, element });
        },
        onEvent: (event) => {
          if (event.type === 'filtered') tally.filtered++;
          trackBrokers(brokers, event);
          counters.connected = brokers.size;
          this.emit({ type: 'megabus', plugin: p.name, event });
        },
      });
      await consumer.start();
    } catch (err) {
      // Not in `running` yet: its runner is stopped here (settings a broker connection cannot use, a destination).
      await consumer?.stop().catch(() => undefined);
      runner.stop({ now: true });
      await runner.done.catch(() => undefined);
      await closeActions();
      throw err;
    }
    this.emit({ type: 'plugin-started', plugin: p.name, destination: consumer.destination, queue: queuePath });
    return { config: p, counters, consumer, runner, actions, brokers };
  }

  private forward(plugin: string, runner: Runner): void {
    runner.on('failed', (e: { name: string; attempt: number; error: unknown; retryAt?: number }) =>
      this.emit({ type: 'failed', plugin, element: e.name, attempt: e.attempt, error: errorOf(e.error), retryAt: e.retryAt }),
    );
    runner.on('retry-later', (e: { name: string; retryAt: number }) =>
      this.emit({ type: 'retry-later', plugin, element: e.name, retryAt: e.retryAt }),
    );
    runner.on('dead-lettered', (e: { name: string; reason: string; error: string }) =>
      this.emit({ type: 'dead-lettered', plugin, element: e.name, reason: e.reason, error: e.error }),
    );
    for (const kind of ['skipped', 'corrupt', 'problem'] as const)
      runner.on(kind, (e: { name?: string; error: unknown }) =>
        this.emit({ type: 'problem', plugin, error: errorOf(e.error), ...(e.name === undefined ? {} : { element: e.name }) }),
      );
    runner.on('purged', (e: { error?: unknown }) => {
      if (e.error !== undefined) this.emit({ type: 'problem', plugin, error: errorOf(e.error) });
    });
  }

  /**
   * Stops: the consumers first (no more messages taken from the brokers; what they delivered and did not write is
   * given back), then the runners (the actions in flight get stopTimeout, then their signal fires and their messages
   * stay in the spool for the next run), then the actions' resources. Bounded by the consumers' and the runners'
   * stop timeouts.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.running.map((r) => r.consumer.stop().catch(() => undefined)));
      for (const r of this.running) r.runner.stop({ reason: 'stop' });
      await Promise.all(this.running.map((r) => r.runner.done.catch(() => undefined)));
      for (const r of this.running) for (const a of r.actions) await Promise.resolve(a.close?.()).catch(() => undefined);
    })();
    return this.stopping;
  }
}

/** An action's failure named after it, kept a RetryLaterError (which the runner does not count) when it is one. */
function labelled(err: unknown, label: string): Error {
  const e = errorOf(err);
  if (e instanceof RetryLaterError) return new RetryLaterError(`${label}: ${e.message}`, { cause: e, delay: e.delay });
  if (e instanceof ActionError && e.message.startsWith(label)) return e;
  return new ActionError(e instanceof ActionError ? e.code : 'ERR_MEGABUS_ACTION', `${label}: ${describe(e)}`, { cause: e });
}

function describe(e: Error): string {
  return e.name === 'Error' || e.name === 'ActionError' ? e.message : `${e.name}: ${e.message}`;
}

/** Which brokers a consumer is connected to, from its events. */
function trackBrokers(brokers: Set<string>, e: MegabusEvent): void {
  if (e.type === 'connected') brokers.add(e.broker);
  else if (e.type === 'drained') brokers.delete(e.broker);
  else if (e.type === 'broker-event') {
    if (e.event.type === 'lost') brokers.delete(e.broker);
    else if (e.event.type === 'reconnected') brokers.add(e.broker);
  }
}
