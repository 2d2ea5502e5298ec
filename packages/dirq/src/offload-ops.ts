import * as fs from 'node:fs';
import { FileSystemError } from './errors';
import { fdatasyncAsync, NOFOLLOW, readFileNoFollowSync, syncFileSystem, syncIo } from './io';
import { LOCK_SUFFIX, MAX_TRIES, TEMP_SUFFIX } from './layout';
import { NameGenerator } from './names';

/**
 * The operations the helper thread of offload.ts runs: QueueSimple's per-element system calls, in the same order,
 * made synchronously one after the other (see offload.ts for why). Loaded by the worker entry (offload-worker.ts);
 * plain functions of their arguments, so that tests can also call them directly.
 */

/** An error as the helper thread reports it: data, rebuilt into a FileSystemError by the caller (see toError). */
export interface OffloadFailure {
  code: string;
  message: string;
  syscall: string;
  path: string;
  dest?: string;
}

/** QueueSimple.addMany's work for addBatch. */
export interface AddManyJob {
  /** The queue directory and the bucket directory in it. */
  root: string;
  dir: string;
  /** One name per item, tried first (made by the queue's own NameGenerator, so they sort with its other names). */
  names: string[];
  items: (Buffer | Uint8Array)[];
  rndhex: number;
  fileMode: number;
  dirMode: number;
  fixFile: boolean;
  fixDir: boolean;
  fsync: boolean;
  syncfsBatch: number;
}

export function fail(e: unknown, syscall: string, path: string, dest?: string): OffloadFailure {
  if (e instanceof FileSystemError) {
    const cause = e.cause as { message?: unknown } | undefined;
    return { code: e.errno, message: String(cause?.message ?? e.message), syscall: e.syscall, path: e.path, dest: e.dest };
  }
  const err = e as NodeJS.ErrnoException;
  return { code: err.code || 'EUNKNOWN', message: String(err.message), syscall, path, dest };
}

/** An fs error with the syscall and path to report it under. */
function tagged(e: unknown, syscall: string, path: string): Error {
  return Object.assign(e as Error, { syscall, path });
}

/** Names whose lock file does not exist: 1, or 0. */
export function unlocked(paths: string[]): (0 | 1)[] {
  return paths.map((p) => (fs.existsSync(p + LOCK_SUFFIX) ? 0 : 1));
}

/**
 * QueueSimple.lock (permissive) then get, pushing each element's data to `chunks`: per path the data's length, 0 for
 * "locked by another or gone", or an error after which the element is left unlocked.
 */
export function lockRead(paths: string[], chunks: Buffer[]): (0 | { length: number } | OffloadFailure)[] {
  return paths.map((p) => {
    const lck = p + LOCK_SUFFIX;
    try {
      fs.linkSync(p, lck);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EEXIST' || code === 'ENOENT' ? 0 : fail(e, 'link', p, lck);
    }
    let stage = 'utime';
    try {
      const t = Date.now() / 1000;
      // Never through a link: a planted symlink is neither touched nor read (ELOOP, reported).
      fs.lutimesSync(p, t, t);
      stage = 'open';
      const data = readFileNoFollowSync(lck);
      chunks.push(data);
      return { length: data.length };
    } catch (e) {
      try {
        fs.unlinkSync(lck);
      } catch {}
      // RACE: locked and removed by another process between our link and utime: not ours to take.
      if (stage === 'utime' && (e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      return fail(e, stage, stage === 'open' ? lck : p);
    }
  });
}

/** QueueSimple.remove: the data first (nobody can lock it again), then the lock; checked[i] first verifies that the lock exists. */
export function remove(paths: string[], checked: boolean[]): (0 | OffloadFailure)[] {
  return paths.map((p, i) => {
    const lck = p + LOCK_SUFFIX;
    if (checked[i]) {
      try {
        fs.lstatSync(lck);
      } catch (e) {
        return fail(e, 'lstat', lck);
      }
    }
    try {
      fs.unlinkSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return fail(e, 'unlink', p);
    }
    try {
      fs.unlinkSync(lck);
    } catch (e) {
      return fail(e, 'unlink', lck);
    }
    return 0;
  });
}

/** One generator per rndhex in this thread, for the names taken after a collision only. */
const generators = new Map<number, NameGenerator>();

function nextName(rndhex: number): string {
  let g = generators.get(rndhex);
  if (g === undefined) {
    g = new NameGenerator(rndhex);
    generators.set(rndhex, g);
  }
  return g.next();
}

interface Temp {
  tmp: string;
  fd: number;
  name: string;
}

/**
 * QueueSimple.addMany with the job's names: writes each item to `name.tmp`, makes the data durable (with fsync)
 * before any name is published, then publishes each under its name (another on a collision). Resolves to the names
 * used; on failure, the temporary files are gone and nothing was published.
 */
export async function addMany(a: AddManyJob): Promise<string[]> {
  const dir = a.dir;
  const temps: Temp[] = [];
  let created = false;
  const mkdir = () => {
    try {
      fs.mkdirSync(dir, a.dirMode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw tagged(e, 'mkdir', dir);
    }
    if (a.fixDir) fs.chmodSync(dir, a.dirMode);
    created = true;
  };
  const discard = () => {
    for (const t of temps) {
      try {
        if (t.fd >= 0) fs.closeSync(t.fd);
      } catch {}
      try {
        fs.unlinkSync(t.tmp);
      } catch {}
    }
  };
  const viaSyncfs = a.fsync && a.items.length >= a.syncfsBatch;
  try {
    for (const [i, data] of a.items.entries()) {
      let name = a.names[i] as string;
      let t: Temp | undefined;
      for (let tries = 0; t === undefined; tries++) {
        if (tries >= MAX_TRIES) throw Object.assign(new Error('cannot create a temporary file'), { code: 'EEXIST' });
        const tmp = `${dir}/${name}${TEMP_SUFFIX}`;
        try {
          t = {
            tmp,
            fd: fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, a.fileMode),
            name,
          };
          temps.push(t);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') mkdir();
          // RACE: another process made the same temporary name in the same microsecond.
          else if (code === 'EEXIST') name = nextName(a.rndhex);
          else throw tagged(e, 'open', tmp);
        }
      }
      if (a.fixFile) fs.fchmodSync(t.fd, a.fileMode);
      let off = 0;
      while (off < data.length) off += fs.writeSync(t.fd, data, off, data.length - off);
      if (!a.fsync || viaSyncfs) {
        const fd = t.fd;
        t.fd = -1;
        fs.closeSync(fd);
      }
    }
    // Concurrent fdatasyncs through the pool: the file system merges them into few journal commits.
    if (a.fsync && !viaSyncfs) await Promise.all(temps.map((t) => fdatasyncAsync(t.fd, t.tmp)));
    for (const t of temps) {
      if (t.fd >= 0) fs.closeSync(t.fd);
      t.fd = -1;
    }
    // Data must be durable before any name is published: a crash must never leave an empty element.
    if (viaSyncfs && !(await syncFileSystem(a.root))) {
      for (const t of temps) {
        const fd = fs.openSync(t.tmp, fs.constants.O_RDONLY | NOFOLLOW);
        try {
          fs.fdatasyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
  } catch (e) {
    discard();
    throw e;
  }
  const names: string[] = [];
  for (const t of temps) {
    let name = t.name;
    for (let tries = 0; ; tries++) {
      try {
        fs.linkSync(t.tmp, `${dir}/${name}`);
        break;
      } catch (e) {
        // RACE: the name is taken (another process, same rndhex, same microsecond): take a new one.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries >= MAX_TRIES) throw tagged(e, 'link', t.tmp);
        name = nextName(a.rndhex);
      }
    }
    fs.unlinkSync(t.tmp);
    names.push(name);
  }
  if (a.fsync) {
    syncIo.fsyncDir(dir);
    if (created) syncIo.fsyncDir(a.root);
  }
  return names;
}
