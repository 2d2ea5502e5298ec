import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { FileSystemError } from './errors';

/**
 * The native binding (native/dirq.c, built into build/dirq.node by scripts/build-native.js): QueueSimple's
 * system-call sequences, one call each. Loaded once; undefined where it was not built (not Linux, no C
 * compiler), and then every queue takes its JavaScript path, which makes the same files.
 */
export interface NativeDirq {
  writeTemp(tmp: string, data: Buffer, mode: number, fixMode: boolean, fdatasync: boolean): number;
  writeNew(tmp: string, final: string, data: Buffer, mode: number, fixMode: boolean, fdatasync: boolean): number;
  publish(tmp: string, final: string): number;
  lock(path: string): number;
  readFile(path: string): Buffer | number;
  lockReadMany(paths: string[]): (Buffer | number)[];
  remove(path: string, check: boolean): number;
  removeMany(paths: string[], checks: Uint8Array): Int32Array;
  unlockedMany(paths: string[]): Uint8Array;
  syncfs(path: string): number;
  fsync(path: string): number;
}

/** The stages of native/dirq.c (its STAGE_* values): the system call a failure code names. */
const STAGES: Record<number, string> = {
  1: 'open',
  2: 'fchmod',
  3: 'write',
  4: 'fdatasync',
  5: 'close',
  6: 'renameat2',
  7: 'link',
  8: 'unlink',
  9: 'utime',
  10: 'read',
  11: 'lstat',
  13: 'syncfs',
  14: 'fsync',
  15: 'unlink',
};

export const STAGE = {
  open: 1,
  rename: 6,
  link: 7,
  utime: 9,
  lstat: 11,
  unlinkLock: 15,
} as const;

/** A failure of the publishing step (renameat2, or link without it). */
export function publishing(stage: number): boolean {
  return stage === STAGE.rename || stage === STAGE.link;
}

/** libuv's table: -errno -> [name, description], as in Node's own errors. */
const SYSTEM_ERRORS = getSystemErrorMap();

/** A failure code's parts: the stage (STAGE_*) and the errno name ('EEXIST'...). */
export function failure(code: number): { stage: number; errno: string } {
  const n = -code;
  return { stage: Math.floor(n / 1000), errno: SYSTEM_ERRORS.get(-(n % 1000))?.[0] ?? 'EUNKNOWN' };
}

/** The FileSystemError the JavaScript path would throw for the same failure. */
export function nativeError(code: number, path: string, dest?: string): FileSystemError {
  const { stage, errno } = failure(code);
  const syscall = STAGES[stage] ?? 'unknown';
  const n = -code % 1000;
  const description = SYSTEM_ERRORS.get(-n)?.[1] ?? 'unknown error';
  const cause = Object.assign(new Error(`${errno}: ${description}, ${syscall} '${path}'`), {
    code: errno,
    errno: -n,
    syscall,
    path,
  });
  return new FileSystemError(syscall, path, cause, dest);
}

function load(): { binding?: NativeDirq; reason?: string } {
  if (process.env.MSGBRICKS_DIRQ_NATIVE === '0') return { reason: 'disabled by MSGBRICKS_DIRQ_NATIVE=0' };
  const file = join(__dirname, '..', 'build', 'dirq.node');
  try {
    return { binding: require(file) as NativeDirq };
  } catch (err) {
    return { reason: `cannot load ${file}: ${(err as Error).message.split('\n')[0]}` };
  }
}

const loaded = load();

/** The binding, or undefined (see nativeStatus for why). */
export const native: NativeDirq | undefined = loaded.binding;

/** Whether the binding is in use, and if not, why. */
export function nativeStatus(): { loaded: boolean; reason?: string } {
  return loaded.binding ? { loaded: true } : { loaded: false, reason: loaded.reason };
}
