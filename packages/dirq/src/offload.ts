import { Worker } from 'node:worker_threads';
import { FileSystemError, QueueError } from './errors';

/**
 * Batches of QueueSimple's per-element system calls run by a helper thread, off the event loop.
 *
 * Why not libuv's thread pool (`io: 'async'`): every call there is a request, a completion callback and
 * a promise on the event loop, several per element (a read alone is open, fstat, read, close), and the
 * pool's threads contend for the directory's lock: on a local file system that costs more CPU than the
 * system calls themselves. Here the event loop pays one message per batch, and one thread makes the
 * calls in a row, synchronously, as `io: 'sync'` would. What it buys is overlap: the event loop
 * serializes messages and talks to the network while the thread locks, reads and removes, and a call
 * that blocks (the last unlink of a file on a journalled disk can wait 100 us and more for the journal)
 * no longer stops everything else.
 *
 * Each lane is one thread, started on first use, shared by every queue of the process, and unref'd
 * while it has nothing to do (it never keeps the process alive). Lanes keep slow removals from
 * delaying reads.
 */

/** The helper thread's code: plain JavaScript, self-contained, so it runs the same from src and dist. */
const SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
// The errors are sent back as data; their stacks would only cost time.
Error.stackTraceLimit = 0;
const fail = (e, syscall, path, dest) => ({ code: e.code || 'EUNKNOWN', message: String(e.message), syscall, path, dest });
const ops = {
  // Names whose lock file does not exist: 1, or 0.
  unlocked(paths) {
    return paths.map((p) => (fs.existsSync(p + '.lck') ? 0 : 1));
  },
  // QueueSimple.lock (permissive) then get: the data's length, 0 for "locked by another or gone", or an
  // error after which the element is left unlocked.
  lockRead(paths, chunks) {
    return paths.map((p) => {
      const lck = p + '.lck';
      try {
        fs.linkSync(p, lck);
      } catch (e) {
        return e.code === 'EEXIST' || e.code === 'ENOENT' ? 0 : fail(e, 'link', p, lck);
      }
      let stage = 'utime';
      try {
        const t = Date.now() / 1000;
        fs.utimesSync(p, t, t);
        stage = 'read';
        const data = fs.readFileSync(lck);
        chunks.push(data);
        return { length: data.length };
      } catch (e) {
        try {
          fs.unlinkSync(lck);
        } catch {}
        // RACE: locked and removed by another process between our link and utime: not ours to take.
        return stage === 'utime' && e.code === 'ENOENT' ? 0 : fail(e, stage, stage === 'read' ? lck : p);
      }
    });
  },
  // QueueSimple.remove: the data first (nobody can lock it again), then the lock; checked[i] first
  // verifies that the lock exists. 0, or an error.
  remove(paths, _chunks, checked) {
    return paths.map((p, i) => {
      const lck = p + '.lck';
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
        if (e.code !== 'ENOENT') return fail(e, 'unlink', p);
      }
      try {
        fs.unlinkSync(lck);
      } catch (e) {
        return fail(e, 'unlink', lck);
      }
      return 0;
    });
  },
  // QueueSimple.addMany: paths[0] is the bucket directory, flags.names the element names to try first,
  // flags.items the data. Resolves to the names used (another name is taken on a collision).
  async addMany(paths, _chunks, a) {
    const dir = paths[0];
    const temps = [];
    let created = false;
    const mkdir = () => {
      try {
        fs.mkdirSync(dir, a.dirMode);
      } catch (e) {
        if (e.code === 'EEXIST') return;
        throw Object.assign(e, { syscall: 'mkdir', path: dir });
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
      for (let i = 0; i < a.items.length; i++) {
        let name = a.names[i];
        let fd;
        for (let tries = 0; ; tries++) {
          if (tries >= 100) throw Object.assign(new Error('cannot create a temporary file'), { code: 'EEXIST' });
          const tmp = dir + '/' + name + '.tmp';
          try {
            fd = fs.openSync(tmp, 'wx', a.fileMode);
            temps.push({ tmp, fd, name });
            break;
          } catch (e) {
            if (e.code === 'ENOENT') mkdir();
            else if (e.code === 'EEXIST') name = nextName(a.rndhex);
            else throw Object.assign(e, { syscall: 'open', path: tmp });
          }
        }
        const t = temps[temps.length - 1];
        if (a.fixFile) fs.fchmodSync(fd, a.fileMode);
        const data = a.items[i];
        let off = 0;
        while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
        if (!a.fsync || viaSyncfs) {
          t.fd = -1;
          fs.closeSync(fd);
        }
      }
      if (a.fsync && !viaSyncfs) {
        // Concurrent fdatasyncs through the pool: the file system merges them into few journal commits.
        const fdatasync = (t) =>
          new Promise((res, rej) =>
            fs.fdatasync(t.fd, (e) => (e ? rej(Object.assign(e, { syscall: 'fdatasync', path: t.tmp })) : res())),
          );
        await Promise.all(temps.map(fdatasync));
      }
      for (const t of temps) {
        if (t.fd >= 0) fs.closeSync(t.fd);
        t.fd = -1;
      }
      // Data must be durable before any name is published: a crash must never leave an empty element.
      if (viaSyncfs) {
        try {
          require('node:child_process').execFileSync('sync', ['--file-system', a.root], { stdio: 'ignore', timeout: 600000 });
        } catch (e) {
          if (e.code !== 'ENOENT') throw Object.assign(new Error('sync --file-system failed'), { code: 'EIO', syscall: 'syncfs', path: a.root });
          for (const t of temps) {
            const fd = fs.openSync(t.tmp, 'r');
            try {
              fs.fdatasyncSync(fd);
            } finally {
              fs.closeSync(fd);
            }
          }
        }
      }
    } catch (e) {
      discard();
      throw e;
    }
    const names = [];
    for (const t of temps) {
      let name = t.name;
      for (let tries = 0; ; tries++) {
        try {
          fs.linkSync(t.tmp, dir + '/' + name);
          break;
        } catch (e) {
          // RACE: the name is taken (another process, same rndhex, same microsecond): take a new one.
          if (e.code !== 'EEXIST' || tries >= 100) throw Object.assign(e, { syscall: 'link', path: t.tmp });
          name = nextName(a.rndhex);
        }
      }
      fs.unlinkSync(t.tmp);
      names.push(name);
    }
    if (a.fsync) {
      fsyncDir(dir);
      if (created) fsyncDir(a.root);
    }
    return names;
  },
};
function fsyncDir(p) {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
// After a collision only: a name from this thread's clock, after every one it made.
let last = 0;
function nextName(rndhex) {
  let us = Math.floor(Date.now() * 1000);
  if (us <= last) us = last + 1;
  last = us;
  const sec = Math.floor(us / 1e6);
  return sec.toString(16).padStart(8, '0') + (us % 1e6).toString(16).padStart(5, '0') + rndhex.toString(16);
}
parentPort.on('message', async ({ id, op, paths, flags }) => {
  const chunks = [];
  let out;
  try {
    out = await ops[op](paths, chunks, flags);
  } catch (e) {
    parentPort.postMessage({ id, error: fail(e, e.syscall || op, e.path || '') });
    return;
  }
  let buffer;
  if (chunks.length > 0) {
    // One transferred buffer for the whole batch (readFileSync's may share Node's pool: never transfer those).
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.length;
    }
    buffer = all.buffer;
  }
  parentPort.postMessage({ id, out, buffer }, buffer ? [buffer] : []);
});
`;

/** An error as the helper thread reports it. */
export interface OffloadFailure {
  code: string;
  message: string;
  syscall: string;
  path: string;
  dest?: string;
}

type Result = 0 | 1 | string | { length: number } | OffloadFailure;

interface Reply {
  id: number;
  out?: Result[];
  buffer?: ArrayBuffer;
  error?: OffloadFailure;
}

interface Call {
  resolve: (r: { out: Result[]; buffer: Buffer | undefined }) => void;
  reject: (e: unknown) => void;
}

class Lane {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, Call>();
  private nextId = 0;

  private start(): Worker {
    const w = new Worker(SOURCE, { eval: true, stdout: false, stderr: false });
    const broken = (err: unknown) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const calls = [...this.calls.values()];
      this.calls.clear();
      for (const c of calls) c.reject(err);
    };
    w.on('message', (reply: Reply) => {
      const call = this.calls.get(reply.id);
      if (call === undefined) return;
      this.calls.delete(reply.id);
      if (this.calls.size === 0) w.unref();
      if (reply.error !== undefined) call.reject(toError(reply.error));
      else call.resolve({ out: reply.out ?? [], buffer: reply.buffer && Buffer.from(reply.buffer) });
    });
    w.on('error', broken);
    w.on('exit', (code) => broken(new QueueError('ERR_DIRQ_OFFLOAD', `the file-system helper thread exited (${code})`)));
    w.unref();
    return w;
  }

  run(op: string, paths: string[], flags?: unknown): Promise<{ out: Result[]; buffer: Buffer | undefined }> {
    this.worker ??= this.start();
    const w = this.worker;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.calls.size === 0) w.ref();
      this.calls.set(id, { resolve, reject });
      w.postMessage({ id, op, paths, flags });
    });
  }
}

const lanes = new Map<string, Lane>();

function lane(name: string): Lane {
  let l = lanes.get(name);
  if (l === undefined) {
    l = new Lane();
    lanes.set(name, l);
  }
  return l;
}

export function toError(f: OffloadFailure): FileSystemError {
  return new FileSystemError(f.syscall, f.path, Object.assign(new Error(f.message), { code: f.code }), f.dest);
}

function isFailure(r: Result): r is OffloadFailure {
  return typeof r === 'object' && 'code' in r;
}

/** Which of `paths` have no lock file now. */
export async function offloadUnlocked(paths: string[]): Promise<boolean[]> {
  const { out } = await lane('read').run('unlocked', paths);
  return out.map((r) => r === 1);
}

/**
 * Locks (link `path.lck`, utime) and reads each path, in order: the bytes, null if another process
 * holds the lock or the element is gone, or the error (the element then stays unlocked).
 */
export async function offloadLockRead(paths: string[]): Promise<(Buffer | null | FileSystemError)[]> {
  const { out, buffer } = await lane('read').run('lockRead', paths);
  let off = 0;
  return out.map((r) => {
    if (r === 0 || r === 1) return null;
    if (isFailure(r)) return toError(r);
    const b = (buffer as Buffer).subarray(off, off + r.length);
    off += r.length;
    return b;
  });
}

/** Removes each locked element (data, then lock); `checked[i]` first checks that it is locked. Per path: the error, or undefined. */
export async function offloadRemove(paths: string[], checked: boolean[]): Promise<(OffloadFailure | undefined)[]> {
  const { out } = await lane('remove').run('remove', paths, checked);
  return out.map((r) => (isFailure(r) ? r : undefined));
}

export interface AddManyJob {
  /** The queue directory and the bucket directory in it. */
  root: string;
  dir: string;
  /** One name per item, tried first. */
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

/** QueueSimple.addMany's work on a helper thread ("write" lane): resolves to the element names (without the bucket). */
export async function offloadAddMany(job: AddManyJob): Promise<string[]> {
  const { dir, ...flags } = job;
  const { out } = await lane('write').run('addMany', [dir], flags);
  return out as string[];
}
