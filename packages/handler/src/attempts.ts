/**
 * Attempt records: what the runner remembers of an element between attempts, kept beside the element so that it
 * survives a restart and is shared by every runner on the spool.
 *
 * - DQS (python-dirq QueueSimple): the file `XXXXXXXX/YYYYYYYYYYYYYY.att` next to the element file. python-dirq and
 *   @msgbricks/dirq only know names of 14 hex digits (elements) and the `.tmp` and `.lck` suffixes: they neither
 *   list, count, lock nor purge a `.att` file. An intermediate directory holding one is not empty, so neither purge
 *   removes it; the runner removes a record whose element is gone (another consumer took it) when it sees one.
 * - DQN (python-dirq Queue): the file `attempts` inside the element directory. Both libraries read only the
 *   schema's fields and remove the element directory with everything in it.
 *
 * The content is one line of JSON: `{"attempts":N,"retryAt":MS,"error":"TEXT"}`: failed attempts so far, the wall
 * clock time (ms) before which no runner takes the element again, and the last failure. It is written to a
 * temporary name (`.att.tmp`, `attempts.tmp`) then renamed, only while the element is locked by the writer; a `.tmp`
 * left by a crash is what both purges remove. Records are advisory: one lost in a crash costs a retry, never a message.
 */
import * as fs from 'node:fs';
import { FileSystemError } from '@msgbricks/dirq';
import { type DQN, DQS } from '@msgbricks/message';

/** The queues the runner consumes: python-messaging's DQS and DQN. */
export type MessageSpool = DQS | DQN;

export interface AttemptRecord {
  /** Failed attempts so far (a retry-later does not count). */
  attempts: number;
  /** Wall-clock milliseconds before which the element is not taken again. */
  retryAt: number;
  /** The last failure's message. */
  error: string;
}

export const ATT_SUFFIX = '.att';
const DQN_FILE = 'attempts';

/** Where element `name`'s record lives. */
export function recordPath(queue: MessageSpool, name: string): string {
  return queue instanceof DQS ? `${queue.path}/${name}${ATT_SUFFIX}` : `${queue.path}/${name}/${DQN_FILE}`;
}

/** Parses a record; anything unreadable counts as no record (it is rewritten at the next failure). */
export function parseRecord(text: string): AttemptRecord | undefined {
  try {
    const o = JSON.parse(text) as Partial<AttemptRecord>;
    if (typeof o !== 'object' || o === null) return undefined;
    const attempts = Number.isSafeInteger(o.attempts) && (o.attempts as number) >= 0 ? (o.attempts as number) : 0;
    const retryAt = typeof o.retryAt === 'number' && Number.isFinite(o.retryAt) ? o.retryAt : 0;
    return { attempts, retryAt, error: typeof o.error === 'string' ? o.error : '' };
  } catch {
    return undefined;
  }
}

/** Reads element `name`'s record; undefined when it has none. */
export async function readRecord(queue: MessageSpool, name: string): Promise<AttemptRecord | undefined> {
  const path = recordPath(queue, name);
  try {
    return parseRecord(await fs.promises.readFile(path, 'utf8'));
  } catch (err) {
    // RACE: no record, or the element (with its record) was removed meanwhile.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new FileSystemError('open', path, err as NodeJS.ErrnoException);
  }
}

/** Writes element `name`'s record (the element is locked by the caller): temporary file, then rename. */
export async function writeRecord(queue: MessageSpool, name: string, record: AttemptRecord): Promise<void> {
  const path = recordPath(queue, name);
  const tmp = `${path}.tmp`;
  try {
    await fs.promises.writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o666 & ~(queue.umask ?? 0) });
  } catch (err) {
    throw new FileSystemError('open', tmp, err as NodeJS.ErrnoException);
  }
  try {
    await fs.promises.rename(tmp, path);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw new FileSystemError('rename', tmp, err as NodeJS.ErrnoException, path);
  }
}

/** Removes element `name`'s record; a missing one is fine. */
export async function removeRecord(queue: MessageSpool, name: string): Promise<void> {
  const path = recordPath(queue, name);
  try {
    await fs.promises.unlink(path);
  } catch (err) {
    // RACE: another runner saw the element gone and removed the record first.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileSystemError('unlink', path, err as NodeJS.ErrnoException);
  }
}
