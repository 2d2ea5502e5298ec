/**
 * One run of a transfer command: modules, instance lock, pid file, signals, the pipeline, statistics.
 */
import type * as http from 'node:http';
import {
  type AgentOptions,
  type Callback,
  inlineCallback,
  moduleCallback,
  PendingError,
  type PipelineEvent,
  runPipeline,
} from '@msgbricks/agent';
import { EXIT, UnsupportedError } from './errors';
import { lockSpool, type SpoolLock } from './lock';
import { type Logger, out } from './logger';
import { Counters, serveMetrics } from './metrics';
import { checkDistinctQueues, journalPath, makeDeadLetter, makeIncoming, makeOutgoing } from './modules';
import { PidFile } from './pidfile';
import { program } from './program';
import { formatStatistics } from './stats';

/** Milliseconds between two looks at the pid file (touch and action). */
const PIDFILE_POLL_MS = 250;

function makeCallback(options: AgentOptions): Callback | undefined {
  const code = options['callback-code'];
  if (code !== undefined) return inlineCallback(code);
  const path = options['callback-path'];
  if (path !== undefined) return moduleCallback(path);
  return undefined;
}

function describeEvent(logger: Logger, e: PipelineEvent): void {
  switch (e.type) {
    case 'dropped':
      logger.debug({ id: e.id, reason: e.reason }, 'message dropped by the callback');
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
  const counters = new Counters();
  const dlq = makeDeadLetter(options);
  const deadLetter = dlq === undefined ? undefined : counters.outgoing(dlq, 'deadLettered');
  const { incoming, spool } = makeIncoming(options, { logger, deadLetter });
  const outgoing = counters.outgoing(makeOutgoing(options, logger), 'out');
  const callback = makeCallback(options);

  const stop = new AbortController();
  const cleanups: (() => Promise<void> | void)[] = [];
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal: sig }, 'stopping: finishing the messages in flight');
      stop.abort();
    } else {
      logger.warn({ signal: sig }, 'stopping now: unfinished elements stay locked until the next start');
      process.exit(EXIT.failure);
    }
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
        if (action === 'quit' && !stop.signal.aborted) {
          logger.info({ pidfile: pidfile.path }, 'stopping: quit asked through the pid file');
          stop.abort();
        }
      }, PIDFILE_POLL_MS);
      timer.unref();
      cleanups.push(() => clearInterval(timer));
    }
    let lock: SpoolLock | undefined;
    if (spool !== undefined) {
      lock = await lockSpool(spool, 'incoming', (err) => {
        logger.error({ err: err.message }, 'instance lock lost: stopping');
        stop.abort();
      });
      const held = lock;
      cleanups.push(() => held.release());
      logger.debug({ lock: lock.lockPath, journal: journalPath(spool) }, 'incoming queue locked');
    }
    let server: http.Server | undefined;
    const port = options['metrics-port'];
    if (port !== undefined) {
      server = await serveMetrics(port, counters);
      const s = server;
      cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
      logger.info({ port }, 'serving Prometheus metrics at /metrics');
    }

    logger.info(
      {
        incoming: incoming.description,
        outgoing: outgoing.description,
        deadLetter: deadLetter?.description ?? 'none (undeliverable messages are released)',
      },
      'transfer started',
    );
    let stats: Awaited<ReturnType<typeof runPipeline>>;
    try {
      stats = await runPipeline(counters.incoming(incoming), outgoing, {
        window: options.window,
        count: options.count,
        duration: options.duration,
        timeoutInactivity: options['timeout-inactivity'],
        timeoutLinger: options['timeout-linger'],
        lazy: options.lazy,
        callback,
        callbackData: options['callback-data'] === undefined ? undefined : { ...options['callback-data'] },
        deadLetter,
        signal: stop.signal,
        onEvent: (e) => describeEvent(logger, e),
      });
    } catch (err) {
      if (err instanceof PendingError) {
        logger.error({ pending: err.pending }, `${err.pending} pending messages: released, they will be delivered again`);
        return EXIT.failure;
      }
      throw err;
    }
    logger.info(
      {
        received: stats.received,
        sent: stats.sent,
        dropped: stats.dropped,
        deadLettered: stats.deadLettered,
        released: stats.released,
        stoppedBy: stats.stoppedBy,
      },
      'transfer finished',
    );
    if (options.statistics) out(formatStatistics(stats));
    return EXIT.ok;
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
