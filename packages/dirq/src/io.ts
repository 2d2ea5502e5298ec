import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { FileSystemError } from './errors';

export type Maybe<T> = T | Promise<T>;

/**
 * The file-system primitives the queues are built from. Every failure is a
 * FileSystemError naming the system call and path, so callers branch on
 * `err.errno`. Two implementations: `sync` issues each call directly (one
 * system call of a few microseconds on a local file system, and three to
 * five times the throughput of going through the thread pool), `async` goes
 * through libuv's thread pool and never blocks the event loop, for network
 * file systems where a single call can take milliseconds.
 */
export interface Io {
  readonly kind: 'sync' | 'async';
  createExclusive(path: string, mode: number): Maybe<number>;
  writeAll(fd: number, data: Buffer, path: string): Maybe<void>;
  fdatasync(fd: number, path: string): Maybe<void>;
  fchmod(fd: number, mode: number, path: string): Maybe<void>;
  close(fd: number, path: string): Maybe<void>;
  link(existing: string, created: string): Maybe<void>;
  /** link() for lock attempts, where failure is routine: the errno string, or undefined on success. */
  tryLink(existing: string, created: string): Maybe<string | undefined>;
  /** mkdir() for lock attempts: the errno string, or undefined on success. */
  tryMkdir(path: string, mode: number): Maybe<string | undefined>;
  unlink(path: string): Maybe<void>;
  rename(from: string, to: string): Maybe<void>;
  mkdir(path: string, mode: number): Maybe<void>;
  chmod(path: string, mode: number): Maybe<void>;
  rmdir(path: string): Maybe<void>;
  /** rm -r: a directory and everything in it, symbolic links removed, never followed. */
  removeTree(path: string): Maybe<void>;
  /** Sets the mtime (and atime) to now, of the path itself: a symbolic link is not followed. */
  touch(path: string): Maybe<void>;
  lstat(path: string): Maybe<fs.Stats>;
  /** Reads a whole file, never through a symbolic link (ELOOP). */
  readFile(path: string): Maybe<Buffer>;
  readdir(path: string): Maybe<string[]>;
  fsyncDir(path: string): Maybe<void>;
  /**
   * Streams a directory's entries with bounded memory; resolves false if it does not exist.
   * The sync implementation reads batches directly and yields to the event loop every few
   * milliseconds; the async one reads each batch through the thread pool.
   */
  scan(path: string, onEntry: (name: string) => void): Promise<boolean>;
}

// O_NOFOLLOW on every open of an element, lock or temporary file: a spool is often writable by users the agent
// does not trust, and a link planted there must never make it read, write or touch another file.
export const NOFOLLOW = fs.constants.O_NOFOLLOW;
const CREATE_EXCL = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW;
const READ_NOFOLLOW = fs.constants.O_RDONLY | NOFOLLOW;

/** The whole content of a file that is not a symbolic link (ELOOP if it is one). */
export function readFileNoFollowSync(path: string): Buffer {
  const fd = fs.openSync(path, READ_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function readFileNoFollow(path: string): Promise<Buffer> {
  const h = await fs.promises.open(path, READ_NOFOLLOW);
  try {
    return await h.readFile();
  } finally {
    await h.close();
  }
}

// Node's own error for a failed call captures a stack trace that is never looked at: we wrap it in a
// FileSystemError (which has its own) or just read its code. Turning capture off costs nothing and
// saves a third of a failed call; the limit is restored before any other JavaScript can run.
function quietly<R>(fn: () => R): R {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function wrapSync<A extends unknown[], R>(syscall: string, fn: (...a: A) => R, pathIndex = 0, destIndex = -1) {
  return (...args: A): R => {
    try {
      return quietly(() => fn(...args));
    } catch (err) {
      const dest = destIndex >= 0 ? String(args[destIndex]) : undefined;
      throw new FileSystemError(syscall, String(args[pathIndex]), err, dest);
    }
  };
}

/** A failure of rm -r, named after the entry and the call that failed inside the tree. */
function treeError(root: string, err: unknown): FileSystemError {
  const e = err as NodeJS.ErrnoException;
  return new FileSystemError(e.syscall ?? 'rm', e.path ?? root, err);
}

function errnoOrUndefined(fn: () => void): string | undefined {
  try {
    quietly(fn);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  }
}

function now(): number {
  return Date.now() / 1000;
}

export const syncIo: Io = {
  kind: 'sync',
  createExclusive: wrapSync('open', (path: string, mode: number) => fs.openSync(path, CREATE_EXCL, mode)),
  writeAll: wrapSync(
    'write',
    (fd: number, data: Buffer, _path: string) => {
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    },
    2,
  ),
  fdatasync: wrapSync('fdatasync', (fd: number, _path: string) => fs.fdatasyncSync(fd), 1),
  fchmod: wrapSync('fchmod', (fd: number, mode: number, _path: string) => fs.fchmodSync(fd, mode), 2),
  close: wrapSync('close', (fd: number, _path: string) => fs.closeSync(fd), 1),
  link: wrapSync('link', (a: string, b: string) => fs.linkSync(a, b), 0, 1),
  tryLink: (a, b) => errnoOrUndefined(() => fs.linkSync(a, b)),
  tryMkdir: (p, mode) => errnoOrUndefined(() => fs.mkdirSync(p, mode)),
  unlink: wrapSync('unlink', (p: string) => fs.unlinkSync(p)),
  rename: wrapSync('rename', (a: string, b: string) => fs.renameSync(a, b), 0, 1),
  mkdir: wrapSync('mkdir', (p: string, mode: number) => {
    fs.mkdirSync(p, mode);
  }),
  chmod: wrapSync('chmod', (p: string, mode: number) => fs.chmodSync(p, mode)),
  rmdir: wrapSync('rmdir', (p: string) => fs.rmdirSync(p)),
  removeTree: (p) => {
    try {
      quietly(() => fs.rmSync(p, { recursive: true }));
    } catch (err) {
      throw treeError(p, err);
    }
  },
  // lutimes: the lock time is the element's own, a link's target is never touched.
  touch: wrapSync('utime', (p: string) => {
    const t = now();
    fs.lutimesSync(p, t, t);
  }),
  lstat: wrapSync('lstat', (p: string) => fs.lstatSync(p)),
  readFile: wrapSync('open', (p: string) => readFileNoFollowSync(p)),
  readdir: wrapSync('readdir', (p: string) => fs.readdirSync(p)),
  fsyncDir: wrapSync('fsync', (p: string) => {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }),
  scan: scanDirSync,
};

function call<R>(syscall: string, path: string, run: (cb: (err: Error | null, r?: R) => void) => void, dest?: string) {
  return new Promise<R>((resolve, reject) => {
    run((err, r) => (err ? reject(new FileSystemError(syscall, path, err, dest)) : resolve(r as R)));
  });
}

export const asyncIo: Io = {
  kind: 'async',
  createExclusive: (p, mode) => call<number>('open', p, (cb) => fs.open(p, CREATE_EXCL, mode, cb)),
  writeAll: async (fd, data, p) => {
    let off = 0;
    while (off < data.length) {
      off += await call<number>('write', p, (cb) => fs.write(fd, data, off, data.length - off, null, cb));
    }
  },
  fdatasync: (fd, p) => call<void>('fdatasync', p, (cb) => fs.fdatasync(fd, cb)),
  fchmod: (fd, mode, p) => call<void>('fchmod', p, (cb) => fs.fchmod(fd, mode, cb)),
  close: (fd, p) => call<void>('close', p, (cb) => fs.close(fd, cb)),
  link: (a, b) => call<void>('link', a, (cb) => fs.link(a, b, cb), b),
  tryLink: (a, b) => new Promise((resolve) => fs.link(a, b, (err) => resolve(err ? (err.code ?? 'EUNKNOWN') : undefined))),
  tryMkdir: (p, mode) =>
    new Promise((resolve) => fs.mkdir(p, mode, (err) => resolve(err ? (err.code ?? 'EUNKNOWN') : undefined))),
  unlink: (p) => call<void>('unlink', p, (cb) => fs.unlink(p, cb)),
  rename: (a, b) => call<void>('rename', a, (cb) => fs.rename(a, b, cb), b),
  mkdir: (p, mode) => call<void>('mkdir', p, (cb) => fs.mkdir(p, mode, (e) => cb(e))),
  chmod: (p, mode) => call<void>('chmod', p, (cb) => fs.chmod(p, mode, cb)),
  rmdir: (p) => call<void>('rmdir', p, (cb) => fs.rmdir(p, cb)),
  removeTree: (p) =>
    new Promise((resolve, reject) => fs.rm(p, { recursive: true }, (err) => (err ? reject(treeError(p, err)) : resolve()))),
  touch: (p) => {
    const t = now();
    return call<void>('utime', p, (cb) => fs.lutimes(p, t, t, cb));
  },
  lstat: (p) => call<fs.Stats>('lstat', p, (cb) => fs.lstat(p, cb)),
  readFile: (p) =>
    readFileNoFollow(p).catch((err) => {
      throw new FileSystemError('open', p, err);
    }),
  readdir: (p) => call<string[]>('readdir', p, (cb) => fs.readdir(p, cb)),
  scan: scanDir,
  fsyncDir: async (p) => {
    const fd = await call<number>('open', p, (cb) => fs.open(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, cb));
    try {
      await call<void>('fsync', p, (cb) => fs.fsync(fd, cb));
    } finally {
      await call<void>('close', p, (cb) => fs.close(fd, cb));
    }
  },
};

/** Batch fdatasync through the thread pool, so the file system can merge them into few journal commits. */
export function fdatasyncAsync(fd: number, path: string): Promise<void> {
  return asyncIo.fdatasync(fd, path) as Promise<void>;
}

/**
 * Streams the entries of a directory with bounded memory (fs.Dir reads a
 * batch at a time through the thread pool, so huge directories never block
 * the event loop). Resolves false if the directory does not exist.
 */
export async function scanDir(path: string, onEntry: (name: string) => void): Promise<boolean> {
  let dir: fs.Dir;
  try {
    dir = await fs.promises.opendir(path, { bufferSize: 256 });
  } catch (err) {
    // RACE: a concurrent purge may have removed an intermediate directory: it is simply empty for us.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new FileSystemError('opendir', path, err);
  }
  try {
    for (;;) {
      let ent: fs.Dirent | null;
      try {
        ent = await dir.read();
      } catch (err) {
        throw new FileSystemError('readdir', path, err);
      }
      if (ent === null) break;
      onEntry(ent.name);
    }
  } finally {
    await dir.close().catch(() => undefined);
  }
  return true;
}

/** Returns a function to await in long loops: it yields to the event loop every `sliceMs` milliseconds. */
export function yielder(sliceMs = 5): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    const t = performance.now();
    if (t - last < sliceMs) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        last = performance.now();
        resolve();
      }),
    );
  };
}

/**
 * syncfs(2) on the file system holding `path`, through coreutils' `sync
 * --file-system` (Node has no binding): one flush makes a whole batch of
 * files durable, where one fdatasync per file costs a journal commit each.
 * Resolves false when the command is missing, so callers fall back to fdatasync.
 */
export function syncFileSystem(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['--file-system', path], { timeout: 600_000 }, (err) => {
      if (err === null) resolve(true);
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve(false);
      else reject(new FileSystemError('syncfs', path, Object.assign(err, { code: 'EIO' })));
    });
  });
}

async function scanDirSync(path: string, onEntry: (name: string) => void): Promise<boolean> {
  let dir: fs.Dir;
  try {
    dir = fs.opendirSync(path, { bufferSize: 256 });
  } catch (err) {
    // RACE: a concurrent purge may have removed an intermediate directory: it is simply empty for us.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new FileSystemError('opendir', path, err);
  }
  const pause = yielder();
  try {
    for (;;) {
      let ent: fs.Dirent | null;
      try {
        ent = dir.readSync();
      } catch (err) {
        throw new FileSystemError('readdir', path, err);
      }
      if (ent === null) break;
      onEntry(ent.name);
      const p = pause();
      if (p !== undefined) await p;
    }
  } finally {
    try {
      dir.closeSync();
    } catch {
      // already closed
    }
  }
  return true;
}
