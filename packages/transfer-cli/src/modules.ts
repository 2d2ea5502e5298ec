/**
 * Turns the options into the pipeline's modules. Every module is made here, behind makeIncoming,
 * makeOutgoing and makeDeadLetter: directory queues (@msgbricks/agent) and brokers (brokers.ts: the protocol
 * chosen by the URI's scheme among protocols.ts's, its module made by its descriptor).
 */
import {
  DEAD_LETTER_REASON,
  type Incoming,
  type Outgoing,
  type PipelineStats,
  type PurgeOutcome,
  QueueIncoming,
  QueueOutgoing,
} from '@msgbricks/agent';
import { DQN, DQS, Message, type MessageError, type MessageQueue, newMessageQueue } from '@msgbricks/message';
import { makeBrokerIncoming, makeBrokerOutgoing } from './brokers';
import type { AgentOptions, QueueSpec } from './config/schema';
import { CliError } from './errors';
import type { Logger } from './logger';
import type { BrokerMetrics } from './metrics';
import { canonicalPath, sameDirectory } from './paths';
import { program } from './program';
import type { SpoolFaultWatch } from './spool-faults';
/** Header naming the spool element a dead-lettered corrupt element came from. */
export const DEAD_LETTER_SOURCE = 'x-msgbricks-dead-letter-source';

/** The lock journal the command keeps beside an incoming queue (the queue's parent must be writable), links resolved. */
export function journalPath(queuePath: string): string {
  return `${canonicalPath(queuePath)}.${program().name}.journal`;
}

/**
 * Opens (creating it if needed) the queue of a spec. maxlock and maxtemp are stompclt's purge settings,
 * not queue options, and are not passed on. `durable` turns fsync on unless the spec says otherwise:
 * what the agent writes is on disk before the incoming element is removed.
 */
export function openQueue(spec: QueueSpec, durable: boolean): MessageQueue {
  const { maxlock: _maxlock, maxtemp: _maxtemp, ...rest } = spec;
  const s: Record<string, string> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) s[k] = v;
  if (durable && s.type !== 'NULL' && s.fsync === undefined) s.fsync = 'true';
  try {
    return newMessageQueue(s);
  } catch (err) {
    throw new CliError('ERR_TRANSFER_QUEUE', err instanceof Error ? err.message : String(err), { cause: err });
  }
}

/** The incoming side of a NULL queue: nothing, ever (or idle forever with --loop). */
class NullIncoming implements Incoming {
  readonly description = 'queue NULL';
  constructor(private readonly loop: boolean) {}
  async open(): Promise<void> {}
  async next(): Promise<null | undefined> {
    return this.loop ? undefined : null;
  }
  async ack(): Promise<void> {}
  async release(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface IncomingModule {
  readonly incoming: Incoming;
  /** The spool path when the incoming side is a directory queue: it gets the instance lock. */
  readonly spool?: string;
}

export interface ModuleContext {
  readonly logger: Logger;
  /** Where corrupt elements and undeliverable messages go; none: they stay (see docs/stompclt.md). */
  readonly deadLetter?: Outgoing;
  /** Reconnections and receipt latencies, for --metrics-port. */
  readonly metrics?: BrokerMetrics;
  /** The run's counts: the incoming spool adds the elements it dead-letters and skips. */
  readonly stats?: PipelineStats;
  /** Told of the incoming spool's listing faults (EACCES, EIO...) and their end. */
  readonly faults?: SpoolFaultWatch;
}

/** The incoming module: a directory queue, or a broker's subscriptions (client acks with --reliable, auto otherwise). */
export function makeIncoming(options: AgentOptions, ctx: ModuleContext): IncomingModule {
  if (options['incoming-broker-uri'] !== undefined) return { incoming: makeBrokerIncoming(options, ctx.logger, ctx.metrics) };
  const spec = options['incoming-queue'];
  if (spec === undefined) throw new CliError('ERR_TRANSFER_OPTIONS', 'no incoming module');
  const queue = openQueue(spec, false);
  if (!(queue instanceof DQS || queue instanceof DQN)) return { incoming: new NullIncoming(options.loop) };
  const deadLetter = ctx.deadLetter;
  const purgeTold = new Set<string>();
  const incoming = new QueueIncoming(queue, {
    remove: options.remove,
    loop: options.loop,
    journal: journalPath(queue.path),
    onJournalEvent: (e) =>
      e.type === 'writable'
        ? ctx.logger.info({ journal: journalPath(queue.path) }, 'lock journal: space again, written in full')
        : ctx.logger.warn(
            { journal: journalPath(queue.path), error: e.error.message },
            'lock journal: file system full; the transfer goes on, but after a crash the locks taken meanwhile wait for the stale-lock purge',
          ),
    onPurge: (o) => logPurge(ctx.logger, queue.path, o, purgeTold),
    onFault: ctx.faults?.listener(queue.path, 'incoming', 'incoming queue'),
    onStray: (path) => ctx.logger.warn({ queue: queue.path, path }, 'stray file at the top of the queue: ignored'),
    onUnreadable: async (name, error) => {
      // A link carries no data of its own: recorded (never its target's content) and removed. Anything else
      // unreadable holds data we cannot move: it stays, for the operator.
      if ((error as { errno?: string }).errno === 'ELOOP' && deadLetter !== undefined) {
        const reason = `symbolic link, never followed: ${error.message}`;
        ctx.logger.warn(
          { element: name, reason },
          'symbolic link refused: recorded in the dead-letter queue without its target, and removed',
        );
        await deadLetter.send(
          new Message({ header: { [DEAD_LETTER_REASON]: reason, [DEAD_LETTER_SOURCE]: `${queue.path}/${name}` } }),
        );
        if (ctx.stats !== undefined) ctx.stats.deadLettered++;
        return 'remove';
      }
      if (ctx.stats !== undefined) ctx.stats.skipped++;
      ctx.logger.warn(
        { element: name, err: error.message },
        'element cannot be locked or read: skipped, the rest of the spool goes on',
      );
      return 'skip';
    },
    onCorrupt:
      deadLetter === undefined
        ? undefined
        : async (name: string, bytes: Buffer, error: MessageError) => {
            const reason = `corrupt element: ${error.message}`;
            ctx.logger.warn({ element: name, reason }, 'corrupt element moved to the dead-letter queue');
            await deadLetter.send(
              new Message({
                header: { [DEAD_LETTER_REASON]: reason, [DEAD_LETTER_SOURCE]: `${queue.path}/${name}` },
                body: bytes,
              }),
            );
            if (ctx.stats !== undefined) ctx.stats.deadLettered++;
          },
  });
  return { incoming, spool: queue.path };
}

/**
 * What the periodic purge did: a warning per entry it left in place, a warning if it failed; never fatal. With
 * `told` (kept for the run), an entry or a failure already warned of is logged at debug level by later purges: an
 * entry left in place is met by every purge, and a daemon would repeat the same warning every interval.
 */
export function logPurge(logger: Logger, queue: string, o: PurgeOutcome, told?: Set<string>): void {
  const firstTime = (key: string) => {
    if (told === undefined) return true;
    if (told.has(key)) return false;
    told.add(key);
    return true;
  };
  if ('error' in o) {
    const fields = { queue, err: o.error.message };
    const msg = 'purge failed: the transfer goes on, the purge is tried again later';
    if (firstTime(`failed ${o.error.message}`)) logger.warn(fields, msg);
    else logger.debug(fields, msg);
    return;
  }
  const r = o.result;
  for (const w of r.warnings) {
    const fields = { queue, path: w.path, reason: w.reason };
    if (firstTime(`left ${w.path}`)) logger.warn(fields, 'purge: unexpected entry left in place');
    else logger.debug(fields, 'purge: unexpected entry left in place');
  }
  logger.debug(
    { queue, removedTemporary: r.removedTemporary, brokenLocks: r.brokenLocks, removedDirectories: r.removedDirectories },
    'purge done',
  );
}

/** The outgoing module: a directory queue (written durably), or a broker (a message is acked upstream once confirmed). */
export function makeOutgoing(
  options: AgentOptions,
  logger?: Logger,
  metrics?: BrokerMetrics,
  faults?: SpoolFaultWatch,
): Outgoing {
  if (options['outgoing-broker-uri'] !== undefined) return makeBrokerOutgoing(options, logger, metrics);
  const spec = options['outgoing-queue'];
  if (spec === undefined) throw new CliError('ERR_TRANSFER_OPTIONS', 'no outgoing module');
  return spoolOutgoing(spec, 'outgoing', 'outgoing queue', logger, faults);
}

/** The dead-letter queue (msgbricks), written durably; undefined when --dead-letter-queue is not given. */
export function makeDeadLetter(options: AgentOptions, logger?: Logger, faults?: SpoolFaultWatch): Outgoing | undefined {
  const spec = options['dead-letter-queue'];
  return spec === undefined ? undefined : spoolOutgoing(spec, 'dead-letter', 'dead-letter queue', logger, faults);
}

/**
 * A spool written durably; while it cannot be written (full, or a persistent error: EACCES, EROFS, EIO...), the
 * writes wait with backoff (said once per state change, through `faults`) instead of failing.
 */
function spoolOutgoing(
  spec: QueueSpec,
  side: 'outgoing' | 'dead-letter',
  what: string,
  logger: Logger | undefined,
  faults: SpoolFaultWatch | undefined,
): QueueOutgoing {
  const queue = openQueue(spec, true);
  const onEvent = faults?.listener(queue.path, side, what);
  return new QueueOutgoing(queue, {
    onEvent:
      onEvent ??
      ((e) => {
        if (e.type === 'resumed') logger?.info({ queue: queue.path, waitedMs: e.waitedMs }, `${what}: writing again`);
        else if (e.attempt === 1) logger?.warn({ queue: queue.path, error: e.error.message }, `${what}: cannot write, retrying`);
      }),
    giveUp: faults?.giveUp.signal,
  });
}

/** Refuses a queue used twice (incoming and outgoing or dead-letter), by whatever path (links resolved): it would feed itself. */
export function checkDistinctQueues(options: AgentOptions): void {
  const inPath = options['incoming-queue']?.path;
  if (inPath === undefined) return;
  for (const key of ['outgoing-queue', 'dead-letter-queue'] as const) {
    const p = options[key]?.path;
    if (p !== undefined && sameDirectory(p, inPath))
      throw new CliError('ERR_TRANSFER_OPTIONS', `${key} is the incoming queue (${inPath}): it would feed itself`);
  }
}
