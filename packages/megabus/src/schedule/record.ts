/**
 * A schedule's records on disk: one JSON file per event in the Scheduler's directory, `<KEY>.json` (the key with
 * every byte outside `[A-Za-z0-9_.-]` as `%XX`, a leading dot too; a key longer than 200 such characters as
 * `~<sha256>.json`). Each write goes to `<FILE>.tmp`, is fsync'd, renamed over the record, and the directory
 * fsync'd: a crash leaves the old record or the new one, never half of one (a `.tmp` left behind is removed at the
 * next start). A file that does not parse as a record is renamed `<FILE>.corrupt-<MS>` and reported.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileSystemError } from '@msgbricks/dirq';

/**
 * pending: waits for its due time (or a retry's); started: its action was started and had not finished when the
 * record was written (after a crash: interrupted); done: the action succeeded; failed: given up (max attempts, the
 * next step fell due, or interrupted and run at most once); cancelled: the event was cancelled first; missed: it
 * fell due while the Scheduler was down and was later than its max_late by the time it could run.
 */
export type StepState = 'pending' | 'started' | 'done' | 'failed' | 'cancelled' | 'missed';

/** active: steps are left to run; completed: every step ended (done, failed or missed); cancelled: cancelled. */
export type EventState = 'active' | 'completed' | 'cancelled';

export interface StepRecord {
  name: string;
  /** Seconds after the event time. */
  at: number;
  /** When it falls due (ms since the epoch): event time + at. */
  due: number;
  state: StepState;
  /** Attempts started so far (an interrupted one counts). */
  attempts: number;
  /** When the next attempt may start (ms), after a failure. */
  retryAt?: number;
  /** The last failure. */
  error?: string;
  /** When the last attempt started, and when the step ended (ms). */
  started?: number;
  finished?: number;
}

export interface EventRecord {
  version: 1;
  key: string;
  /** The event time (ms since the epoch); null for an event cancelled before it was scheduled. */
  time: number | null;
  /** When the Scheduler took it (ms). */
  received: number;
  state: EventState;
  /** The message that announced the event, in python-messaging's JSON form; null for a cancelled-first event. */
  message: Record<string, unknown> | null;
  steps: StepRecord[];
  /** When it was completed or cancelled (ms): the retention period counts from here. */
  finished?: number;
  /** Why it was cancelled (the cancelling message's key), or what made it end early. */
  reason?: string;
}

export const RECORD_SUFFIX = '.json';
export const TMP_SUFFIX = '.tmp';
export const CORRUPT_INFIX = '.corrupt-';

/** The record file's name of an event key. */
export function recordName(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.-]/.test(c) && !(c === '.' && out === '') ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > 200) out = `~${createHash('sha256').update(key).digest('hex')}`;
  return `${out}${RECORD_SUFFIX}`;
}

const STEP_STATES = new Set<string>(['pending', 'started', 'done', 'failed', 'cancelled', 'missed']);
const EVENT_STATES = new Set<string>(['active', 'completed', 'cancelled']);

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || check(v);

/** Checks a parsed record's shape; the problem, or undefined when it is a record. */
export function recordProblem(o: unknown): string | undefined {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object';
  const r = o as Record<string, unknown>;
  if (r.version !== 1) return `unknown version ${JSON.stringify(r.version)}`;
  if (typeof r.key !== 'string' || r.key === '') return 'key: not a string';
  if (r.time !== null && !isTime(r.time)) return 'time: not a number';
  if (!isTime(r.received)) return 'received: not a number';
  if (typeof r.state !== 'string' || !EVENT_STATES.has(r.state)) return `state: ${JSON.stringify(r.state)}`;
  if (r.message !== null && (typeof r.message !== 'object' || Array.isArray(r.message))) return 'message: not an object';
  if (!optional(r.finished, isTime)) return 'finished: not a number';
  if (!Array.isArray(r.steps)) return 'steps: not a list';
  for (const [i, s] of (r.steps as unknown[]).entries()) {
    const st = s as Record<string, unknown>;
    const bad =
      typeof s !== 'object' || s === null
        ? 'not an object'
        : typeof st.name !== 'string'
          ? 'name'
          : !isTime(st.at)
            ? 'at'
            : !isTime(st.due)
              ? 'due'
              : typeof st.state !== 'string' || !STEP_STATES.has(st.state)
                ? 'state'
                : !Number.isSafeInteger(st.attempts)
                  ? 'attempts'
                  : !optional(st.retryAt, isTime) || !optional(st.started, isTime) || !optional(st.finished, isTime)
                    ? 'a time'
                    : !optional(st.error, (v) => typeof v === 'string')
                      ? 'error'
                      : undefined;
    if (bad !== undefined) return `steps[${i}]: ${bad}`;
  }
  return undefined;
}

/** Writes a record durably: temporary file, fsync, rename over the record, fsync of the directory. */
export async function writeRecord(dir: string, record: EventRecord): Promise<void> {
  const file = path.join(dir, recordName(record.key));
  const tmp = `${file}${TMP_SUFFIX}`;
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(tmp, 'w', 0o644);
    await handle.writeFile(`${JSON.stringify(record, null, 1)}\n`);
    await handle.sync();
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw new FileSystemError('write', tmp, err);
  }
  await handle.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw new FileSystemError('rename', tmp, err, file);
  }
  await syncDir(dir);
}

/** Removes a record (retention); one already gone is fine. */
export async function removeRecord(dir: string, key: string): Promise<void> {
  const file = path.join(dir, recordName(key));
  try {
    await fs.promises.unlink(file);
  } catch (err) {
    // RACE: nothing else removes records, but an operator may have: the end result is the same.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileSystemError('unlink', file, err);
  }
}

async function syncDir(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    throw new FileSystemError('fsync', dir, err);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** What a directory holds: the records that parse, and the files that do not (moved aside by the caller). */
export interface Loaded {
  records: EventRecord[];
  corrupt: { file: string; error: string }[];
}

/** Creates the directory if needed, removes temporary files a crash left, and reads every record. */
export async function loadRecords(dir: string): Promise<Loaded> {
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new FileSystemError('mkdir', dir, err);
  }
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    throw new FileSystemError('readdir', dir, err);
  }
  const out: Loaded = { records: [], corrupt: [] };
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    if (name.endsWith(`${RECORD_SUFFIX}${TMP_SUFFIX}`)) {
      // A write a crash interrupted: the record it was replacing is still whole beside it.
      await fs.promises.unlink(file).catch(() => undefined);
      continue;
    }
    if (!name.endsWith(RECORD_SUFFIX)) continue;
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (err) {
      // RACE: listed then gone (an operator removed it): nothing to schedule.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      if ((err as NodeJS.ErrnoException).code === 'EISDIR') {
        out.corrupt.push({ file, error: 'a directory' });
        continue;
      }
      throw new FileSystemError('read', file, err);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      out.corrupt.push({ file, error: `not JSON: ${(err as Error).message}` });
      continue;
    }
    const problem = recordProblem(parsed);
    if (problem !== undefined) out.corrupt.push({ file, error: problem });
    else if (recordName((parsed as EventRecord).key) !== name)
      out.corrupt.push({ file, error: `its key ${JSON.stringify((parsed as EventRecord).key)} belongs in another file` });
    else out.records.push(parsed as EventRecord);
  }
  return out;
}

/** Moves a file that is not a record out of the way, keeping it for an operator; resolves to its new name. */
export async function moveAside(file: string, now: number): Promise<string> {
  const to = `${file}${CORRUPT_INFIX}${now}`;
  try {
    await fs.promises.rename(file, to);
  } catch (err) {
    throw new FileSystemError('rename', file, err, to);
  }
  return to;
}
