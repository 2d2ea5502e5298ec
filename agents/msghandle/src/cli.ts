/**
 * The msghandle command: @msgbricks/handler's runner around a command (--exec) or a module (--module), with the
 * transfer agents' logging and metrics. The single place that turns errors into messages and exit codes.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '@msgbricks/errors';
import { type Consumer, commandHandler, consume, type Handler } from '@msgbricks/handler';
import { type MessageQueue, MessageQueueNull, newMessageQueue } from '@msgbricks/message';
import {
  keepYoungGenerationSmall,
  type Logger,
  makeLogger,
  message,
  newRegistry,
  out,
  STOMPCLT,
  serveMetrics,
  setProgram,
} from '@msgbricks/transfer-cli';
import { registerMetrics } from './metrics';
import { loadModule } from './module';
import { helpText, type Options, OptionsError, parseOptions } from './options';

const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function text(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The runner's events as log lines. */
function logEvents(consumer: Consumer, logger: Logger): void {
  consumer.on('handled', (e) => logger.debug({ element: e.name, attempt: e.attempt, seconds: e.seconds }, 'handled'));
  consumer.on('failed', (e) =>
    logger.warn(
      {
        element: e.name,
        attempt: e.attempt,
        error: text(e.error),
        ...(e.retryAt ? { retry: new Date(e.retryAt).toISOString() } : {}),
      },
      'attempt failed',
    ),
  );
  consumer.on('retry-later', (e) => logger.info({ element: e.name, retry: new Date(e.retryAt).toISOString() }, 'retry later'));
  consumer.on('timeout', (e) => logger.warn({ element: e.name, attempt: e.attempt }, 'attempt timed out'));
  consumer.on('dead-lettered', (e) => logger.error({ element: e.name, reason: e.reason, error: e.error }, 'dead-lettered'));
  consumer.on('corrupt', (e) => logger.error({ element: e.name, error: text(e.error) }, 'not a valid message'));
  consumer.on('skipped', (e) => logger.warn({ element: e.name, error: text(e.error) }, 'element skipped'));
  consumer.on('problem', (e) => logger.warn({ ...(e.name ? { element: e.name } : {}), error: text(e.error) }, 'problem'));
  consumer.on('abandoned', (e) => logger.warn({ element: e.name }, 'handler still running at the stop: released'));
  consumer.on('stopping', (e) => logger.info({ reason: e.reason }, 'stopping'));
  consumer.on('purged', (e) => {
    if ('error' in e) logger.warn({ error: text(e.error) }, 'purge failed');
    else if (e.result.brokenLocks + e.result.removedTemporary > 0 || e.result.warnings.length > 0)
      logger.info({ ...e.result, warnings: e.result.warnings.length }, 'purged');
  });
}

/** Opens a queue of an option: one that cannot be (a path that is a file, no permission) is bad input, named. */
function openQueue(spec: string, option: string): MessageQueue {
  try {
    const q = newMessageQueue(spec);
    if (option === 'queue' && q instanceof MessageQueueNull) throw new Error('a NULL queue has nothing to handle');
    return q;
  } catch (err) {
    throw new UsageError(`--${option}: ${text(err)}`, { cause: err });
  }
}

async function handle(o: Options, logger: Logger): Promise<number> {
  let handler: Handler;
  let close = (): void => undefined;
  if (o.exec !== undefined) {
    const h = commandHandler(o.exec);
    handler = h;
    close = h.close;
  } else handler = await loadModule(o.module as string);
  try {
    const consumer = consume(openQueue(o.queue, 'queue'), handler, {
      concurrency: o.concurrency,
      ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
      ...(o.deadLetterQueue !== undefined ? { deadLetter: openQueue(o.deadLetterQueue, 'dead-letter-queue') } : {}),
      timeout: o.timeout * 1000,
      backoff: { initial: o.retryDelay * 1000, max: o.retryDelayMax * 1000 },
      drain: o.drain,
      stopTimeout: o.stopTimeout * 1000,
      purgeInterval: o.purgeInterval * 1000,
      maxLock: o.maxLock,
    });
    logEvents(consumer, logger);
    if (o.metricsPort !== undefined) {
      const registry = newRegistry();
      registerMetrics(registry, consumer);
      await serveMetrics(o.metricsPort, registry, o.metricsAddress);
      logger.info({ address: o.metricsAddress, port: o.metricsPort }, 'metrics served at /metrics');
    }
    logger.info({ queue: o.queue, run: o.exec ?? o.module, concurrency: o.concurrency }, 'handling');
    try {
      const c = await consumer.done;
      const { inFlight: _, ...counts } = c;
      logger.info(counts, 'stopped');
      return EXIT.ok;
    } catch (err) {
      logger.fatal({ error: text(err) }, 'the spool failed');
      return EXIT.failure;
    }
  } finally {
    close();
  }
}

/** Runs the command; resolves to its exit code. */
export async function run(argv: string[]): Promise<number> {
  setProgram({ ...STOMPCLT, name: 'msghandle', manual: 'docs/handlers.md', examples: [] });
  keepYoungGenerationSmall();
  try {
    const o = parseOptions(argv);
    if (o.help) {
      out(helpText());
      return EXIT.ok;
    }
    if (o.version) {
      out(`msghandle (msgbricks) ${version()}`);
      return EXIT.ok;
    }
    return await handle(o, makeLogger(o));
  } catch (err) {
    if (err instanceof OptionsError) {
      for (const p of err.problems) message(p);
      return EXIT.usage;
    }
    if (err instanceof UsageError) {
      message(err.message);
      return err.exitCode;
    }
    message(text(err));
    if (process.env.MSGHANDLE_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return EXIT.failure;
  }
}
