/**
 * simplevisor's `store`: a JSON file keeping the supervisors' history between invocations, so that `single` run from
 * cron still enforces intensity. The layout is simplevisor's (`supervisor.py` `dump_status`): each supervisor under
 * the md5 of its name, `{"name", "cycles": [[time, adjusted], ...], "children": {...}}`, nested as the tree, so a
 * site moving from simplevisor keeps its history. msgbricks adds `restarts` (times, for OTP's intensity) and the
 * root's `held_until` / `gave_up`; simplevisor ignores keys it does not know.
 */
import * as fs from 'node:fs';
import { errnoOf, MsgbricksError } from '@msgbricks/errors';

export class StoreError extends MsgbricksError {
  constructor(syscall: string, file: string, cause: unknown) {
    super('ERR_SUPERVISE_STORE', `cannot ${syscall}(${file}): ${errnoOf(cause) ?? String(cause)}`, { cause });
  }
}

export type StoreData = Record<string, unknown>;

/**
 * The store's content; none yet is an empty store. A file that cannot be read or is not a JSON object is not an
 * error for the caller: its `problem` says why it is ignored (the run goes on without history, then replaces it).
 */
export function readStore(file: string): { data: StoreData; problem?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { data: {} };
    return { data: {}, problem: `store ${file}: cannot read(${file}): ${errnoOf(err) ?? String(err)}: history ignored` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { data: {}, problem: `store ${file}: not JSON (${(err as Error).message}): history ignored, file replaced` };
  }
  if (!isObject(value)) return { data: {}, problem: `store ${file}: not a JSON object: history ignored, file replaced` };
  return { data: value };
}

/**
 * Replaces the store atomically: written whole to a temporary file next to it, synced, then renamed over it, so a
 * crash or a full disk leaves the old store or the new one, never half of one.
 */
export function writeStore(file: string, data: StoreData): void {
  const tmp = `${file}.${process.pid}.tmp`;
  let syscall = 'open';
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      syscall = 'write';
      fs.writeFileSync(fd, `${JSON.stringify(data)}\n`);
      syscall = 'fsync';
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new StoreError(syscall, tmp, err);
  }
  try {
    // RACE: two runs at once (cron overlapping a slow one) each rename their own temporary file: the last one wins,
    // and the store is always one whole run's.
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new StoreError('rename', file, err);
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
