/**
 * One run of a transfer command: modules, instance lock, pid file, signals, the pipeline, statistics.
 */
import type * as http from 'node:http';
import { CallbackError, newPipelineStats, PendingError, type PipelineEvent, runPipeline, WorkerCallback } from '@msgbricks/agent';
import type { Message } from '@msgbricks/message';
import { parseSelector } from '@msgbricks/selector';
import type { AgentOptions } from './config/schema';
import { CliError, EXIT, type SpoolFaultError, UnsupportedError } from './errors';
import { lockSpool, type SpoolLock } from './lock';
import { type Logger, out } from './logger';
import { Counters, newRegistry, serveMetrics } from './metrics';
import { checkDistinctQueues, journalPath, makeDeadLetter, makeIncoming, makeOutgoing } from './modules';
import { PidFile } from './pidfile';
import { program } from './program';
import { SpoolFaultWatch } from './spool-faults';
import { formatSpoolStatistics, formatStatistics } from './stats';
import { LiveStatus, wantsLiveStatus } from './status';

/** Milliseconds between two looks at the pid file (touch and action). */
const PIDFILE_POLL_MS = 250;

/** After a stop is asked for (signal, pid file), seconds to wait for the messages in flight without --timeout-linger. */
export const STOP_LINGER_DEFAULT = 10;
/** Seconds, beyond the linger time, that closing (flush, DISCONNECT, unlocking) may take before the process ends anyway. */
export const STOP_GRACE = 5;
/** Milliseconds a forced stop gives the incoming side to give its elements back (unlock) before exiting. */
const FORCED_RELEASE_MS = 2000;

/**
 * The user's callback, loaded in its worker thread (so that it never delays heart-beats and receipts). Code that
 * cannot be loaded is bad input: exit 2 before any broker or spool is used.
 */
async function makeCallback(options: AgentOptions, logger: Logger): Promise<WorkerCallback | undefined> {
  const code = options['callback-code'];
  const path = options['callback-path'];
  if (code === undefined && path === undefined) return undefined;
  const onCrash = (err: Error) => logger.error({ err: err.message }, 'callback worker died: a new one takes the next message');
  try {
    return await WorkerCallback.load(code !== undefined ? { code } : { path: path as string }, { onCrash });
  } catch (err) {
    if (!(err instanceof CallbackError)) throw err;
    throw new CliError('ERR_TRANSFER_CALLBACK', err.message, { cause: err });
  }
}

function describeEvent(logger: Logger, e: PipelineEvent): void {
  switch (e.type) {
    case 'dropped':
      logger.debug({ id: e.id, reason: e.reason }, 'message dropped by the callback');
      break;
    case 'filtered':
      logger.debug({ id: e.id }, 'message filtered out (--filter)');
      break;
    case 'dead-lettered':
      logger.warn({ id: e.id, reason: e.reason }, 'message moved to the dead-letter queue');
      break;
    case 'released':
      logger.warn({ id: e.id, reason: e.reason }, 'message released: it will be delivered again');
      break;
    case 'error':
      logger.error({ err: e.error instanceof Error ? e.error.message : String(e.error) }, 'pipeline error');
      break;
  }
}

/** Runs the transfer; resolves to the exit code. Errors of the user's making are thrown as CliErrors. */
export async function transfer(options: AgentOptions, logger: Logger): Promise<number> {
  if (options.daemon) {
    throw new UnsupportedError(`--daemon is not supported: run ${program().name} in the foreground under systemd or simplevisor`);
  }
  checkDistinctQueues(options);
  // The run's one counts object: the pipeline and the incoming spool add to it; the summary, --statistics, the
  // metrics and the live status read it.
  const stats = newPipelineStats();
  const counters = new Counters(stats);
  const stop = new AbortController();
  // Set by requestStop, defined below: a spool unusable for longer than --timeout-spool-fault stops the run (exit 1).
  let stopForFault: (err: SpoolFaultError) => void = () => undefined;
  const faults = new SpoolFaultWatch(logger, counters, options['timeout-spool-fault'], (err) => stopForFault(err));
  const deadLetter = makeDeadLetter(options, logger, faults);
  const { incoming, spool } = makeIncoming(options, { logger, deadLetter, metrics: counters, stats, faults });
  const outgoing = makeOutgoing(options, logger, counters, faults);
  const callback = await makeCallback(options, logger);
  // Validated with the options (an invalid selector is a configuration error): parsing cannot fail here.
  const selector = options.filter === undefined ? undefined : parseSelector(options.filter);
  const filter = selector === undefined ? undefined : (m: Message) => selector.matches(m.header);

  const cleanups: (() => Promise<void> | void)[] = [];
  // The pipeline stops the callback; this is for a failure before the pipeline runs.
  if (callback !== undefined) cleanups.push(() => callback.close());
  // Every stop is bounded: the linger time for the messages in flight, then STOP_GRACE for closing. Past that
  // (a broker that went silent, a DISCONNECT never answered), or at a second signal, the process ends at once
  // after giving the incoming side's elements back: spool elements unlocked; broker messages, never acked, are
  // redelivered by the broker once the connection is gone.
  const stopLinger = options['timeout-linger'] ?? STOP_LINGER_DEFAULT;
  let forcing = false;
  const forceStop = (fields: Record<string, unknown>, why: string) => {
    if (forcing) return;
    forcing = true;
    logger.warn(fields, `stopping now (${why}): unfinished messages are given back`);
    const bounded = new Promise((r) => setTimeout(r, FORCED_RELEASE_MS).unref());
    void Promise.race([incoming.close().catch(() => undefined), bounded]).finally(async () => {
      for (const c of cleanups.splice(0).reverse()) await Promise.race([Promise.resolve(c()).catch(() => undefined), bounded]);
      process.exit(EXIT.failure);
    });
  };
  const requestStop = (fields: Record<string, unknown>, why: string) => {
    if (stop.signal.aborted) return;
    logger.info(fields, `stopping (${why}): finishing the messages in flight for at most ${stopLinger} s`);
    stop.abort();
    const bound = stopLinger + STOP_GRACE;
    const watchdog = setTimeout(() => forceStop({ ...fields, seconds: bound }, `not stopped within ${bound} s`), bound * 1000);
    watchdog.unref();
    cleanups.push(() => clearTimeout(watchdog));
  };
  stopForFault = (err) => {
    logger.error({ queue: err.queue, side: err.side, err: err.message }, 'spool unusable for too long: giving up');
    requestStop({ queue: err.queue, side: err.side }, '--timeout-spool-fault');
  };
  cleanups.push(() => faults.close());
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) requestStop({ signal: sig }, 'signal');
    else forceStop({ signal: sig }, 'second signal');
  };
  const onHup = () => logger.debug('SIGHUP ignored');
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.on(sig, onSignal);
  process.on('SIGHUP', onHup);
  cleanups.push(() => {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.off(sig, onSignal);
    process.off('SIGHUP', onHup);
  });

  try {
    if (options.pidfile !== undefined) {
      const pidfile = new PidFile(options.pidfile);
      pidfile.create();
      cleanups.push(() => pidfile.remove());
      const timer = setInterval(() => {
        const action = pidfile.check();
        if (action === 'quit') requestStop({ pidfile: pidfile.path }, 'quit asked through the pid file');
      }, PIDFILE_POLL_MS);
      timer.unref();
      cleanups.push(() => clearInterval(timer));
    }
    let lock: SpoolLock | undefined;
    if (spool !== undefined) {
      lock = await lockSpool(spool, 'incoming', (err) => {
        logger.error({ err: err.message }, 'instance lock lost: stopping');
        requestStop({ err: err.message }, 'instance lock lost');
      });
      const held = lock;
      cleanups.push(() => held.release());
      logger.debug({ lock: lock.lockPath, journal: journalPath(spool) }, 'incoming queue locked');
    }
    let server: http.Server | undefined;
    const port = options['metrics-port'];
    if (port !== undefined) {
      const registry = newRegistry();
      counters.register(registry);
      server = await serveMetrics(port, registry, options['metrics-address']);
      const s = server;
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
      logger.info({ address: options['metrics-address'], port }, 'serving Prometheus metrics at /metrics');
    }
    let status: LiveStatus | undefined;
    if (wantsLiveStatus(process.stderr, options.debug)) {
      const live = new LiveStatus({ program: program().name, figures: () => counters });
      status = live;
      live.start();
      cleanups.push(() => live.stop());
    }

    logger.info(
      {
        incoming: incoming.description,
        outgoing: outgoing.description,
        deadLetter: deadLetter?.description ?? 'none (undeliverable messages are released)',
      },
      'transfer started',
    );
    try {
      await runPipeline(incoming, outgoing, {
        window: options.window,
        count: options.count,
        duration: options.duration,
        timeoutInactivity: options['timeout-inactivity'],
        timeoutLinger: options['timeout-linger'],
        stopLinger,
        lazy: options.lazy,
        callback,
        filter,
        callbackData: options['callback-data'] === undefined ? undefined : { ...options['callback-data'] },
        deadLetter,
        signal: stop.signal,
        onEvent: (e) => describeEvent(logger, e),
        stats,
      });
    } catch (err) {
      if (err instanceof PendingError) {
        logger.error({ pending: err.pending }, `${err.pending} pending messages: released, they will be delivered again`);
        return EXIT.failure;
      }
      throw err;
    } finally {
      status?.stop();
    }
    logger.info(
      {
        received: stats.received,
        sent: stats.sent,
        dropped: stats.dropped,
        filtered: stats.filtered,
        deadLettered: stats.deadLettered,
        released: stats.released,
        acked: stats.acked,
        skipped: stats.skipped,
        spoolFaults: stats.spoolFaults,
        stoppedBy: stats.stoppedBy,
      },
      'transfer finished',
    );
    if (options.statistics) out(`${formatStatistics(stats)}\n${formatSpoolStatistics(stats)}`);
    return faults.failure === undefined ? EXIT.ok : EXIT.failure;
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'cleanup failed');
      }
    }
  }
}
