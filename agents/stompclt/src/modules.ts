/**
 * Turns the options into the pipeline's modules. Every module is made here, behind makeIncoming,
 * makeOutgoing and makeDeadLetter, so that the STOMP broker modules of @msgbricks/stomp plug in at
 * one place: today a broker URI is refused with BROKERS_UNAVAILABLE.
 */
import { resolve } from 'node:path';
import {
  type AgentOptions,
  DEAD_LETTER_REASON,
  type Incoming,
  type Outgoing,
  QueueIncoming,
  QueueOutgoing,
  type QueueSpec,
} from '@msgbricks/agent';
import { DQN, DQS, Message, type MessageError, type MessageQueue, newMessageQueue } from '@msgbricks/message';
import { CliError, UnsupportedError } from './errors';
import type { Logger } from './logger';

export const BROKERS_UNAVAILABLE = 'STOMP brokers are not available yet in this build';
/** Header naming the spool element a dead-lettered corrupt element came from. */
export const DEAD_LETTER_SOURCE = 'x-msgbricks-dead-letter-source';

/** Suffixes of the files stompclt keeps beside an incoming queue (the queue's parent must be writable). */
export function journalPath(queuePath: string): string {
  return `${resolve(queuePath)}.stompclt.journal`;
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
    throw new CliError('ERR_STOMPCLT_QUEUE', err instanceof Error ? err.message : String(err), { cause: err });
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
}

/** The incoming module: a directory queue now, a STOMP subscription later (@msgbricks/stomp). */
export function makeIncoming(options: AgentOptions, ctx: ModuleContext): IncomingModule {
  if (options['incoming-broker-uri'] !== undefined) throw new UnsupportedError(BROKERS_UNAVAILABLE);
  const spec = options['incoming-queue'];
  if (spec === undefined) throw new CliError('ERR_STOMPCLT_OPTIONS', 'no incoming module');
  const queue = openQueue(spec, false);
  if (!(queue instanceof DQS || queue instanceof DQN)) return { incoming: new NullIncoming(options.loop) };
  const deadLetter = ctx.deadLetter;
  const incoming = new QueueIncoming(queue, {
    remove: options.remove,
    loop: options.loop,
    journal: journalPath(queue.path),
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
          },
  });
  return { incoming, spool: queue.path };
}

/** The outgoing module: a directory queue (written durably) now, a STOMP destination later. */
export function makeOutgoing(options: AgentOptions): Outgoing {
  if (options['outgoing-broker-uri'] !== undefined) throw new UnsupportedError(BROKERS_UNAVAILABLE);
  const spec = options['outgoing-queue'];
  if (spec === undefined) throw new CliError('ERR_STOMPCLT_OPTIONS', 'no outgoing module');
  return new QueueOutgoing(openQueue(spec, true));
}

/** The dead-letter queue (msgbricks), written durably; undefined when --dead-letter-queue is not given. */
export function makeDeadLetter(options: AgentOptions): Outgoing | undefined {
  const spec = options['dead-letter-queue'];
  return spec === undefined ? undefined : new QueueOutgoing(openQueue(spec, true));
}

/** Refuses a queue used twice (incoming and outgoing or dead-letter): it would feed itself. */
export function checkDistinctQueues(options: AgentOptions): void {
  const inPath = options['incoming-queue']?.path;
  if (inPath === undefined) return;
  for (const key of ['outgoing-queue', 'dead-letter-queue'] as const) {
    const p = options[key]?.path;
    if (p !== undefined && resolve(p) === resolve(inPath))
      throw new CliError('ERR_STOMPCLT_OPTIONS', `${key} is the incoming queue (${inPath}): it would feed itself`);
  }
}
