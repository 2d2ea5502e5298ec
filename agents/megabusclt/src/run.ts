/**
 * `megabusclt [run] --config FILE`: consumes and runs the configured plugins (@msgbricks/megabus's PluginRunner)
 * until SIGTERM or SIGINT, with the transfer agents' log lines (start, per-message outcome at debug, errors, a
 * statistics line every --stats-interval), /metrics and /healthz when configured, and a bounded stop.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import { UsageError } from '@msgbricks/errors';
import {
  loadConfig,
  type MegabusConfig,
  type MegabusEvent,
  type MetricsAddress,
  type PluginEvent,
  PluginRunner,
  PluginSchedules,
  parseMetricsAddress,
  STD_ACTIONS,
} from '@msgbricks/megabus';
import { type Logger, lockSpool, makeLogger, STOMPCLT, setProgram } from '@msgbricks/transfer-cli';
import { serveHttp } from './http';
import { logScheduleEvent, scheduleMetrics, scheduleStatistics } from './schedules';

export interface RunOptions {
  config?: string;
  metrics?: string;
  statsInterval: number;
  debug: number;
  logFormat: 'text' | 'json';
}

/** Past the stop's own bounds (the consumers' and the actions' stop timeouts), the process ends anyway. */
const STOP_BOUND_MS = 30_000;

function metricsOption(text: string): MetricsAddress {
  const address = parseMetricsAddress(text);
  if (address === undefined) throw new UsageError(`invalid --metrics ${JSON.stringify(text)}: expected [host:]port`);
  return address;
}

function brokerEvent(logger: Logger, plugin: string, e: MegabusEvent): void {
  switch (e.type) {
    case 'resolved':
      logger.debug({ plugin, brokers: e.brokers }, 'brokers resolved');
      break;
    case 'resolve-failed':
      logger.warn({ plugin, error: e.error.message }, 'cannot resolve the brokers');
      break;
    case 'connected':
      logger.info({ plugin, broker: e.broker }, 'connected');
      break;
    case 'broker-failed':
      logger.warn({ plugin, broker: e.broker, error: e.error.message }, 'broker failed');
      break;
    case 'broker-added':
    case 'draining':
    case 'undrained':
    case 'drained':
      logger.info({ plugin, broker: e.broker }, `broker ${e.type}`);
      break;
    case 'handler-failed':
      logger.error(
        { plugin, broker: e.broker, error: e.error.message },
        'cannot write to the plugin spool: given back to the broker',
      );
      break;
    case 'broker-event': {
      const ev = e.event as { type: string; error?: Error; server?: string };
      if (ev.type === 'lost') logger.warn({ plugin, broker: e.broker, error: ev.error?.message }, 'connection lost');
      else if (ev.type === 'reconnected') logger.info({ plugin, broker: e.broker }, 'reconnected');
      else logger.debug({ plugin, broker: e.broker, event: ev.type, error: ev.error?.message }, 'broker event');
      break;
    }
    default:
      break;
  }
}

const LEVEL = { debug: 'debug', info: 'info', warning: 'warn', error: 'error' } as const;

function logEvent(logger: Logger, e: PluginEvent): void {
  switch (e.type) {
    case 'plugin-started':
      logger.info({ plugin: e.plugin, destination: e.destination, queue: e.queue }, 'plugin started');
      break;
    case 'received':
      logger.debug({ plugin: e.plugin, element: e.element }, 'received');
      break;
    case 'handled':
      logger.debug(
        { plugin: e.plugin, element: e.element, attempt: e.attempt, outcome: e.outcome, seconds: Number(e.seconds.toFixed(3)) },
        'handled',
      );
      break;
    case 'failed':
      logger.warn(
        {
          plugin: e.plugin,
          element: e.element,
          attempt: e.attempt,
          error: e.error.message,
          ...(e.retryAt === undefined ? {} : { retry: new Date(e.retryAt).toISOString() }),
        },
        'attempt failed',
      );
      break;
    case 'retry-later':
      logger.info({ plugin: e.plugin, element: e.element, retry: new Date(e.retryAt).toISOString() }, 'retry later');
      break;
    case 'dead-lettered':
      logger.error({ plugin: e.plugin, element: e.element, reason: e.reason, error: e.error }, 'dead-lettered');
      break;
    case 'log':
      logger[LEVEL[e.level]]({ plugin: e.plugin, ...e.fields }, e.text);
      break;
    case 'problem':
      logger.warn(
        { plugin: e.plugin, ...(e.element === undefined ? {} : { element: e.element }), error: e.error.message },
        'problem',
      );
      break;
    case 'megabus':
      brokerEvent(logger, e.plugin, e.event);
      break;
    case 'schedule':
      logScheduleEvent(logger, e.plugin, e.event);
      break;
  }
}

async function statistics(logger: Logger, runner: PluginRunner): Promise<void> {
  const queued = await runner.queued();
  for (const c of runner.counters) {
    logger.info(
      {
        plugin: c.plugin,
        received: c.received,
        filtered: c.filtered,
        acted: c.acted,
        unchanged: c.unchanged,
        ignored: c.ignored,
        failed: c.runner.failed,
        retried: c.runner.retried,
        deadLettered: c.runner.deadLettered,
        inFlight: c.runner.inFlight,
        queued: queued[c.plugin],
        brokers: c.connected,
      },
      'statistics',
    );
  }
}

/** Runs the plugins; resolves to the exit code (0 stopped by a signal, 1 a plugin spool failed). */
export async function runPlugins(o: RunOptions): Promise<number> {
  setProgram({ ...STOMPCLT, name: 'megabusclt', manual: 'docs/megabus.md', examples: [] });
  // Bad input (ConfigError, a bad --metrics) is thrown before anything starts: exit 2 from the caller's catch.
  const loaded = loadConfig({ file: o.config });
  const metrics = o.metrics === undefined ? loaded.metrics : metricsOption(o.metrics);
  const config: MegabusConfig = loaded;
  if (config.plugins.length === 0)
    throw new UsageError(`${config.file}: no plugin configured (plugins: a name, a destination, actions; see docs/megabus.md)`);
  const logger = makeLogger({ 'log-format': o.logFormat, debug: o.debug });
  let server: http.Server | undefined;
  let observe: ((plugin: string, seconds: number) => void) | undefined;
  // The plugins' timed schedules: started first, once the state_dir lock is held (steps that fell due while down run at
  // once), stopped last.
  const schedules = new PluginSchedules({ config, onEvent: (e) => logEvent(logger, e) });
  const runner = new PluginRunner({
    config,
    onEvent: (e) => {
      if (e.type === 'handled') observe?.(e.plugin, e.seconds);
      logEvent(logger, e);
    },
    actions: STD_ACTIONS,
    extraSteps: schedules.steps,
  });
  // One megabusclt per state_dir, held before anything reads or writes it (the constructors above do not): the
  // schedules' start already rewrites their records. The lock sits beside the directory, whose parent must exist.
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o750 });
  const lock = await lockSpool(config.stateDir, 'state', (err) => {
    logger.fatal({ error: err.message }, 'the state_dir lock was lost');
    void stop({ reason: 'state_dir lock lost' });
  });
  let stopping: Promise<void> | undefined;
  let requested: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    requested = resolve;
  });
  const stop = (why: Record<string, unknown>): Promise<void> => {
    if (stopping === undefined) {
      requested();
      logger.info(why, 'stopping: finishing the actions in flight');
      const bound = setTimeout(() => {
        logger.error(
          { seconds: STOP_BOUND_MS / 1000 },
          'not stopped in time: exiting (unfinished messages stay in the plugin spools)',
        );
        process.exit(1);
      }, STOP_BOUND_MS);
      bound.unref();
      stopping = runner
        .stop()
        .then(() => schedules.stop())
        .finally(() => clearTimeout(bound));
    }
    return stopping;
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now (unfinished messages stay in the plugin spools)');
      process.exit(1);
    }
    void stop({ signal });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let timer: NodeJS.Timeout | undefined;
  try {
    logger.info(
      { config: config.file, stateDir: config.stateDir, plugins: config.plugins.map((p) => p.name) },
      'megabusclt started',
    );
    await schedules.start();
    await runner.start();
    if (metrics !== undefined) {
      ({ server, observe } = await serveHttp(metrics, runner, (register, client) =>
        scheduleMetrics(register, client, schedules),
      ));
      logger.info({ address: metrics.host, port: metrics.port }, 'serving /metrics and /healthz');
    }
    if (o.statsInterval > 0) {
      timer = setInterval(() => {
        void statistics(logger, runner);
        scheduleStatistics(logger, schedules);
      }, o.statsInterval * 1000);
      timer.unref();
    }
    const failed = await Promise.race([stopRequested.then(() => undefined), runner.failure.catch((err: unknown) => err)]);
    if (failed !== undefined) {
      logger.fatal({ error: failed instanceof Error ? failed.message : String(failed) }, 'a plugin spool failed');
      await stop({ reason: 'spool failure' });
      return 1;
    }
    await stopping;
    await statistics(logger, runner);
    scheduleStatistics(logger, schedules);
    logger.info('stopped');
    return 0;
  } catch (err) {
    await stop({ reason: 'start failed' });
    throw err;
  } finally {
    clearInterval(timer);
    server?.close();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await lock.release();
  }
}
