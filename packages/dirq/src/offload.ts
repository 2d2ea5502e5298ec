import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FileSystemError, QueueError } from './errors';
import type { AddManyJob, OffloadFailure } from './offload-ops';
import type { OffloadReply, OffloadRequest, OffloadResult } from './offload-worker';

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

/**
 * The helper thread's entry point (offload-worker.ts), compiled: beside this file in the built package; from src
 * (jest runs the TypeScript sources) the same file in dist/, which `tsc -b` makes. A thread loads JavaScript only:
 * see docs/decisions.md, "Worker threads run the built code".
 */
const WORKER_FILE = join(__dirname, '..', 'dist', 'offload-worker.js');

/** A request without its id (the lane numbers it). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Call {
  resolve: (r: { out: OffloadResult[]; buffer: Buffer | undefined }) => void;
  reject: (e: unknown) => void;
}

class Lane {
  private worker: Worker | undefined;
  private readonly calls = new Map<number, Call>();
  private nextId = 0;

  private start(): Worker {
    if (!existsSync(WORKER_FILE))
      throw new QueueError('ERR_DIRQ_OFFLOAD', `the file-system helper thread is not built: no ${WORKER_FILE} (run tsc -b)`);
    const w = new Worker(WORKER_FILE, { stdout: false, stderr: false });
    const broken = (err: unknown) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const calls = [...this.calls.values()];
      this.calls.clear();
      for (const c of calls) c.reject(err);
    };
    w.on('message', (reply: OffloadReply) => {
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

  run(request: Unnumbered<OffloadRequest>): Promise<{ out: OffloadResult[]; buffer: Buffer | undefined }> {
    this.worker ??= this.start();
    const w = this.worker;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.calls.size === 0) w.ref();
      this.calls.set(id, { resolve, reject });
      w.postMessage({ id, ...request });
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

function isFailure(r: OffloadResult): r is OffloadFailure {
  return typeof r === 'object' && 'code' in r;
}

/** Which of `paths` have no lock file now. */
export async function offloadUnlocked(paths: string[]): Promise<boolean[]> {
  const { out } = await lane('read').run({ op: 'unlocked', paths });
  return out.map((r) => r === 1);
}

/**
 * Locks (link `path.lck`, utime) and reads each path, in order: the bytes, null if another process
 * holds the lock or the element is gone, or the error (the element then stays unlocked).
 */
export async function offloadLockRead(paths: string[]): Promise<(Buffer | null | FileSystemError)[]> {
  const { out, buffer } = await lane('read').run({ op: 'lockRead', paths });
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
  const { out } = await lane('remove').run({ op: 'remove', paths, checked });
  return out.map((r) => (isFailure(r) ? r : undefined));
}

/** QueueSimple.addMany's work on a helper thread ("write" lane): resolves to the element names (without the bucket). */
export async function offloadAddMany(job: AddManyJob): Promise<string[]> {
  const { out } = await lane('write').run({ op: 'addMany', job });
  return out as string[];
}
