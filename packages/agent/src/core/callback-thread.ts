/**
 * The entry point of WorkerCallback's thread (callback-worker.ts): loads the user's callback with loadCallback (the
 * same code as the in-thread callbacks of callback.ts), then answers the requests in order, in batches. Loaded as
 * compiled JavaScript (dist/core/callback-thread.js), also when jest runs the TypeScript sources: see
 * docs/decisions.md, "Worker threads run the built code".
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Message } from '@msgbricks/message';
import { type CallbackSource, loadCallback } from './callback';
import type { Callback } from './modules';

/** What the thread is started with. */
export interface CallbackThreadData {
  source: CallbackSource;
}

export type Hook = 'start' | 'idle' | 'stop';

export type Request =
  | { hook: 'start'; data: Record<string, string> }
  | { hook: 'idle' | 'stop' | 'exit' }
  | { hook: 'check'; header: [string, string][]; body: string | Uint8Array };

export interface Reply {
  id: number;
  error?: string;
  drop?: string;
  header?: [string, string][];
  body?: string | Uint8Array;
  text?: boolean;
  same?: boolean;
}

/** What the thread posts: a batch of replies, or one of these once. */
export type Notice = Reply[] | { ready: Hook[] } | { loadError: string } | { crashed: string };

const text = (err: unknown) => (err instanceof Error ? err.message : String(err));

const port = parentPort;
if (port === null) throw new Error('callback-thread.js runs as a worker thread (see callback-worker.ts)');
const post = (notice: Notice, transfer: ArrayBuffer[] = []) => port.postMessage(notice, transfer);

async function handle(callback: Callback, req: { id: number } & Request): Promise<Reply> {
  if (req.hook === 'start') {
    await callback.start?.(req.data);
    return { id: req.id };
  }
  if (req.hook !== 'check') {
    if (req.hook !== 'exit') await callback[req.hook]?.();
    return { id: req.id };
  }
  const body = typeof req.body === 'string' ? req.body : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  const msg = new Message({ header: req.header, body });
  const out = await callback.check(msg);
  if (typeof out === 'string') return { id: req.id, drop: out };
  const reply: Reply = { id: req.id, header: out.headerEntries(), text: out.text, same: out.body === msg.body };
  if (reply.same) return reply;
  if (typeof out.body === 'string') reply.body = out.body;
  else {
    // A copy, transferred: user code may keep the message it returned.
    const copy = new Uint8Array(out.body.length);
    copy.set(out.body);
    reply.body = copy;
  }
  return reply;
}

// Replies go back in batches: all those ready when the thread's event loop next turns (the checks of one batch of
// requests, unless one of them waits for I/O or a timer).
let outbox: Reply[] = [];
let transfers: ArrayBuffer[] = [];
function flush(): void {
  if (outbox.length === 0) return;
  post(outbox, transfers);
  outbox = [];
  transfers = [];
}
function reply(r: Reply): void {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(r);
  if (r.body instanceof Uint8Array) transfers.push(r.body.buffer as ArrayBuffer);
}

// N.B. a thread that dies (user code calling process.exit(), an exception thrown from a timer) first sends the replies
// it has: the caller tells from them which call was running, the one that fails.
const exit = process.exit.bind(process);
process.exit = ((code?: number) => {
  flush();
  exit(code);
}) as typeof process.exit;
process.on('uncaughtException', (err) => {
  flush();
  post({ crashed: text(err) });
  exit(1);
});

let callback: Callback | undefined;
try {
  callback = loadCallback((workerData as CallbackThreadData).source);
} catch (err) {
  post({ loadError: text(err) });
}

if (callback !== undefined) {
  const cb = callback;
  let chain = Promise.resolve();
  port.on('message', (requests: ({ id: number } & Request)[]) => {
    for (const req of requests) {
      if (req.hook === 'exit') {
        chain = chain.then(() => {
          flush();
          process.exit(0);
        });
        continue;
      }
      chain = chain.then(() => handle(cb, req)).then(reply, (err) => reply({ id: req.id, error: text(err) }));
    }
  });
  post({ ready: (['start', 'idle', 'stop'] as const).filter((h) => typeof cb[h] === 'function') });
}
