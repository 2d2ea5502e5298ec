/**
 * The entry point of offload.ts's helper thread: runs each request's operation (offload-ops.ts) and posts the result
 * back, with the data read in one transferred buffer. Loaded as compiled JavaScript (dist/offload-worker.js), also
 * when jest runs the TypeScript sources: see docs/decisions.md, "Worker threads run the built code".
 */
import { parentPort } from 'node:worker_threads';
import { type AddManyJob, addMany, fail, lockRead, type OffloadFailure, remove, unlocked } from './offload-ops';

export type OffloadRequest = { id: number } & (
  | { op: 'unlocked' | 'lockRead'; paths: string[] }
  | { op: 'remove'; paths: string[]; checked: boolean[] }
  | { op: 'addMany'; job: AddManyJob }
);

export type OffloadResult = 0 | 1 | string | { length: number } | OffloadFailure;

export interface OffloadReply {
  id: number;
  out?: OffloadResult[];
  buffer?: ArrayBuffer;
  error?: OffloadFailure;
}

// The errors are sent back as data; their stacks would only cost time.
Error.stackTraceLimit = 0;

async function run(req: OffloadRequest, chunks: Buffer[]): Promise<OffloadResult[]> {
  switch (req.op) {
    case 'unlocked':
      return unlocked(req.paths);
    case 'lockRead':
      return lockRead(req.paths, chunks);
    case 'remove':
      return remove(req.paths, req.checked);
    case 'addMany':
      return addMany(req.job);
  }
}

const port = parentPort;
if (port === null) throw new Error('offload-worker.js runs as a worker thread (see offload.ts)');

port.on('message', async (req: OffloadRequest) => {
  const chunks: Buffer[] = [];
  let out: OffloadResult[];
  try {
    out = await run(req, chunks);
  } catch (e) {
    const { syscall, path } = e as { syscall?: string; path?: string };
    port.postMessage({ id: req.id, error: fail(e, syscall || req.op, path || '') } satisfies OffloadReply);
    return;
  }
  let buffer: ArrayBuffer | undefined;
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
  port.postMessage({ id: req.id, out, buffer } satisfies OffloadReply, buffer ? [buffer] : []);
});
