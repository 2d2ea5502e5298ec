/**
 * The user's callback (stompclt's --callback-code and --callback-path) in a worker thread, so that user code can never
 * starve the event loop of the agent: a `check()` that computes for 30 s no longer stops the STOMP heart-beats (which
 * run on the main thread's timers) and the broker no longer drops the connection. Stompclt itself has the problem
 * (docs/stompclt.md, "Callbacks").
 *
 * Messages cross as header entries, a body (a string, or a copy of the bytes whose ArrayBuffer is transferred) and the
 * text flag; a result comes back as a message (the body is not sent back when it is the one that went in), a drop
 * reason, or an error. One call at a time, in order; the calls made (and the replies ready) in one turn of the event
 * loop travel as one message, so that the pipeline can ask for many checks ahead (Callback.pipelined) without paying
 * two thread wake-ups per message. The worker's code is the plain JavaScript of WORKER_SOURCE below,
 * run with `eval: true`: it needs no compilation, so the same code runs from the built package and when jest runs the
 * TypeScript sources (ts-jest compiles what jest loads, never a worker's entry file). The only module it loads is
 * @msgbricks/message (for `Message`), its built entry point by absolute path (see messageModulePath).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Message } from '@msgbricks/message';
import { CallbackError } from './callback';
import type { Callback } from './modules';

/** The callback worker died (process.exit() in user code, an exception thrown from a timer...). */
export class CallbackCrashError extends CallbackError {
  override readonly code = 'ERR_AGENT_CALLBACK_CRASH';
}

/** Inline code (the body of `check(hdr, body, msg, Message)`) or a CommonJS module exporting `check`. */
export type CallbackSource = { readonly code: string } | { readonly path: string };

export interface WorkerCallbackOptions {
  /**
   * The worker died: user code called process.exit(), or threw from a timer. The call in progress (if any) fails with
   * this error; the next call starts a new worker (and calls `start(data)` again).
   */
  onCrash?: (error: CallbackError) => void;
  /** Milliseconds close() waits for the worker to exit before terminating it (default 5000). */
  exitTimeout?: number;
}

/**
 * Runs in the worker. Mirrors inlineCallback and moduleCallback of callback.ts (same messages, same outcomes; the tests
 * run the same cases against both), except that the value of inline code is awaited too. N.B. a template literal:
 * no backslash and no dollar-brace in it.
 */
export const WORKER_SOURCE = `'use strict';
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { Message } = require(workerData.messageModule);

const text = (err) => (err instanceof Error ? err.message : String(err));

function outcome(original, hdr, value) {
  if (value instanceof Message || typeof value === 'string') return value;
  if (value === undefined || value === null) return original.with({ header: hdr });
  if (typeof value === 'object') return new Message({ header: value.header ?? hdr, body: value.body ?? original.body });
  throw new Error('check() returned ' + typeof value + ': return a message, a reason string, or nothing');
}

function load(source) {
  if (source.code !== undefined) {
    let fn;
    try {
      fn = new Function('hdr', 'body', 'msg', 'Message', source.code);
    } catch (err) {
      throw new Error('invalid callback code: ' + text(err));
    }
    return {
      async check(msg) {
        const hdr = msg.header;
        return outcome(msg, hdr, await fn(hdr, msg.body, msg, Message));
      },
    };
  }
  const file = source.path;
  if (!fs.existsSync(file)) throw new Error('callback module not found: ' + file);
  let mod;
  try {
    mod = require(file);
  } catch (err) {
    throw new Error('cannot load callback module ' + file + ': ' + text(err));
  }
  const m = mod !== null && typeof mod === 'object' && typeof mod.check !== 'function' ? (mod.default ?? {}) : (mod ?? {});
  if (typeof m.check !== 'function') throw new Error('callback module ' + file + ' exports no check() function');
  return {
    start: typeof m.start === 'function' ? (data) => m.start(data) : undefined,
    idle: typeof m.idle === 'function' ? () => m.idle() : undefined,
    stop: typeof m.stop === 'function' ? () => m.stop() : undefined,
    async check(msg) {
      return outcome(msg, msg.header, await m.check(msg));
    },
  };
}

let callback;
try {
  callback = load(workerData.source);
} catch (err) {
  parentPort.postMessage({ loadError: text(err) });
}

async function handle(req) {
  if (req.hook !== 'check') {
    await callback[req.hook]?.(req.data);
    return { id: req.id };
  }
  const body = typeof req.body === 'string' ? req.body : Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength);
  const msg = new Message({ header: req.header, body });
  const out = await callback.check(msg);
  if (typeof out === 'string') return { id: req.id, drop: out };
  const reply = { id: req.id, header: out.headerEntries(), text: out.text, same: out.body === msg.body };
  if (reply.same) return reply;
  if (typeof out.body === 'string') reply.body = out.body;
  else {
    // A copy, transferred: user code may keep the message it returned.
    reply.body = new Uint8Array(out.body.length);
    reply.body.set(out.body);
  }
  return reply;
}

// Replies go back in batches: all those ready when the worker's event loop next turns (the checks of one batch of
// requests, unless one of them waits for I/O or a timer).
let outbox = [];
let transfers = [];
function flush() {
  if (outbox.length === 0) return;
  parentPort.postMessage(outbox, transfers);
  outbox = [];
  transfers = [];
}
function reply(r) {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(r);
  if (r.body instanceof Uint8Array) transfers.push(r.body.buffer);
}

// N.B. a worker that dies (user code calling process.exit(), an exception thrown from a timer) first sends the replies
// it has: the caller tells from them which call was running, the one that fails.
const exit = process.exit.bind(process);
process.exit = (code) => {
  flush();
  exit(code);
};
process.on('uncaughtException', (err) => {
  flush();
  parentPort.postMessage({ crashed: text(err) });
  exit(1);
});

if (callback !== undefined) {
  let chain = Promise.resolve();
  parentPort.on('message', (requests) => {
    for (const req of requests) {
      if (req.hook === 'exit') {
        chain = chain.then(() => {
          flush();
          process.exit(0);
        });
        continue;
      }
      chain = chain.then(() => handle(req)).then(reply, (err) => reply({ id: req.id, error: text(err) }));
    }
  });
  parentPort.postMessage({ ready: ['start', 'idle', 'stop'].filter((h) => typeof callback[h] === 'function') });
}
`;

type Request =
  | { hook: 'start'; data: Record<string, string> }
  | { hook: 'idle' | 'stop' | 'exit' }
  | { hook: 'check'; header: [string, string][]; body: string | Uint8Array };

interface Reply {
  id: number;
  error?: string;
  drop?: string;
  header?: [string, string][];
  body?: string | Uint8Array;
  text?: boolean;
  same?: boolean;
}

interface Call {
  /** The request and what to transfer with it; built again when the call goes to a new worker after a crash. */
  build(): { request: Request; transfer: ArrayBuffer[] };
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

/** A check request: the body crosses as a string, or as a copy of just its bytes (transferred). */
function checkRequest(message: Message): { request: Request; transfer: ArrayBuffer[] } {
  const body = message.body;
  if (typeof body === 'string') return { request: { hook: 'check', header: message.headerEntries(), body }, transfer: [] };
  // N.B. a Buffer often shares its ArrayBuffer with others (Node's pool): structured cloning would copy all of it, and
  // transferring it would take it from them.
  const copy = new Uint8Array(body.length);
  copy.set(body);
  return { request: { hook: 'check', header: message.headerEntries(), body: copy }, transfer: [copy.buffer] };
}

/**
 * Where @msgbricks/message's built entry point is, for the worker: its package.json's `main`. N.B. not
 * `require.resolve('@msgbricks/message')`: under jest (whose createRequire is its own too) that maps to the TypeScript
 * sources, which a worker cannot load; the package.json is found through node_modules either way. So the worker
 * always runs the built package (`tsc -b`).
 */
function messageModulePath(): string {
  try {
    const pkg = require.resolve('@msgbricks/message/package.json');
    const main = (JSON.parse(readFileSync(pkg, 'utf8')) as { main?: string }).main ?? 'index.js';
    const entry = join(dirname(pkg), main);
    if (!existsSync(entry)) throw new Error(`${entry} does not exist`);
    return entry;
  } catch (err) {
    throw new CallbackError(`cannot find @msgbricks/message for the callback worker (is it built?): ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * A Callback (as the pipeline wants it) whose user code runs in a worker thread. Get one with `WorkerCallback.load()`,
 * which rejects with a CallbackError when the code cannot be loaded. `close()` (also done by `stop()`) ends the worker.
 */
export class WorkerCallback implements Callback {
  /** Calls queue here and run one at a time in the worker: the pipeline may overlap them (Callback.pipelined). */
  readonly pipelined = true;
  private worker: Worker | undefined;
  private spawning: Promise<void> | undefined;
  private hooks = new Set<string>();
  /** Calls made and not answered yet, in the order the worker runs them; ids below `posted` went to the worker. */
  private readonly calls = new Map<number, Call>();
  private nextId = 0;
  private posted = 0;
  /** Requests made in this turn of the event loop, sent together (one message for a batch of checks). */
  private outbox: ({ id: number } & Request)[] = [];
  private transfers: ArrayBuffer[] = [];
  private startData: Record<string, string> | undefined;
  private closed = false;
  private readonly source: CallbackSource;
  private readonly messageModule: string;

  private constructor(
    source: CallbackSource,
    private readonly options: WorkerCallbackOptions,
  ) {
    this.source = 'code' in source ? { code: source.code } : { path: resolve(source.path) };
    this.messageModule = messageModulePath();
  }

  /** Starts the worker and loads the user code in it; rejects with a CallbackError saying why it cannot be loaded. */
  static async load(source: CallbackSource, options: WorkerCallbackOptions = {}): Promise<WorkerCallback> {
    const cb = new WorkerCallback(source, options);
    await cb.ensure();
    return cb;
  }

  async start(data: Record<string, string>): Promise<void> {
    this.startData = data;
    await this.ensure();
    if (this.hooks.has('start')) await this.call(() => ({ request: { hook: 'start', data }, transfer: [] }));
  }

  async check(message: Message): Promise<Message | string> {
    if (this.worker === undefined || this.spawning !== undefined) await this.ensure();
    const r = await this.call(() => checkRequest(message));
    if (r.drop !== undefined) return r.drop;
    return new Message({ header: r.header, body: r.same ? message.body : r.body, text: r.text });
  }

  /** Best effort, as it is called whenever there is nothing to do: a crash here is reported through onCrash only. */
  async idle(): Promise<void> {
    if (this.worker === undefined || this.spawning !== undefined) await this.ensure();
    if (!this.hooks.has('idle')) return;
    await this.call(() => ({ request: { hook: 'idle' }, transfer: [] })).catch((err: unknown) => {
      if (!(err instanceof CallbackCrashError)) throw err;
    });
  }

  /** Calls the user's stop() (unless the worker is dead: it is not started again for that), then ends the worker. */
  async stop(): Promise<void> {
    try {
      if (this.worker !== undefined && this.hooks.has('stop'))
        await this.call(() => ({ request: { hook: 'stop' }, transfer: [] }));
    } finally {
      await this.close();
    }
  }

  /** Ends the worker once the calls already made are done (letting its output flush); idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.spawning?.catch(() => undefined);
    const w = this.worker;
    if (w === undefined) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.ref();
    this.outbox.push({ id: -1, hook: 'exit' });
    this.flush();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => {
      timer = setTimeout(() => {
        void w.terminate();
        r();
      }, this.options.exitTimeout ?? 5000);
    });
    await Promise.race([exited, late]);
    clearTimeout(timer);
  }

  /** A worker is there, with the user code loaded (and start() called again after a crash). */
  private ensure(): Promise<void> {
    if (this.spawning !== undefined) return this.spawning;
    if (this.worker !== undefined) return Promise.resolve();
    if (this.closed) return Promise.reject(new CallbackError('the callback is closed'));
    this.spawning = this.spawn().finally(() => {
      this.spawning = undefined;
    });
    return this.spawning;
  }

  private async spawn(): Promise<void> {
    const restart = this.startData !== undefined;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { source: this.source, messageModule: this.messageModule },
    });
    let failure: Error | undefined;
    await new Promise<void>((resolveReady, rejectReady) => {
      let ready = false;
      worker.on('message', (m: Reply[] | { ready?: string[]; loadError?: string; crashed?: string }) => {
        if (Array.isArray(m)) {
          for (const r of m) this.settle(r);
        } else if (m.crashed !== undefined) {
          failure ??= new Error(m.crashed);
        } else if (m.ready !== undefined) {
          ready = true;
          this.hooks = new Set(m.ready);
          this.worker = worker;
          worker.unref();
          resolveReady();
        } else if (m.loadError !== undefined) {
          failure = new CallbackError(m.loadError);
          rejectReady(failure);
          // Whatever the user code started before it failed (a timer) must not keep the worker alive.
          void worker.terminate();
        }
      });
      worker.on('error', (err) => {
        failure ??= err;
      });
      worker.on('exit', (code) => {
        const reason =
          failure instanceof CallbackError
            ? failure
            : new CallbackError(
                failure === undefined
                  ? `callback worker exited with code ${code}`
                  : `callback worker crashed: ${failure.message}`,
                { cause: failure },
              );
        if (!ready) rejectReady(reason);
        else this.crashed(worker, new CallbackCrashError(reason.message, { cause: failure }));
      });
    });
    if (restart && this.hooks.has('start')) {
      const data = this.startData ?? {};
      await this.call(() => ({ request: { hook: 'start', data }, transfer: [] }));
    }
  }

  /**
   * The worker died. The call it was running (the oldest unanswered: it runs them in order) fails with the crash; the
   * calls queued behind it go to a new worker, after start(data).
   */
  private crashed(worker: Worker, crash: CallbackCrashError): void {
    if (this.worker === worker) this.worker = undefined;
    const queued = [...this.calls.entries()];
    this.calls.clear();
    this.outbox = [];
    this.transfers = [];
    if (this.closed) {
      for (const [, c] of queued) c.reject(crash);
      return;
    }
    if (queued.length > 0 && (queued[0] as [number, Call])[0] < this.posted) queued.shift()?.[1].reject(crash);
    this.options.onCrash?.(crash);
    if (queued.length === 0) return;
    this.ensure().then(
      () => {
        for (const [, c] of queued) this.send(c);
      },
      (err: unknown) => {
        for (const [, c] of queued) c.reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private call(build: Call['build']): Promise<Reply> {
    return new Promise<Reply>((resolveCall, rejectCall) => {
      this.send({ build, resolve: resolveCall, reject: rejectCall });
    });
  }

  private send(call: Call): void {
    const worker = this.worker;
    if (worker === undefined) {
      call.reject(new CallbackError('the callback worker is not running'));
      return;
    }
    const id = this.nextId++;
    if (this.calls.size === 0) worker.ref();
    this.calls.set(id, call);
    const { request, transfer } = call.build();
    if (this.outbox.length === 0) setImmediate(() => this.flush());
    this.outbox.push({ id, ...request });
    this.transfers.push(...transfer);
  }

  private flush(): void {
    if (this.outbox.length === 0 || this.worker === undefined) return;
    this.worker.postMessage(this.outbox, this.transfers);
    this.posted = this.nextId;
    this.outbox = [];
    this.transfers = [];
  }

  private settle(reply: Reply): void {
    const call = this.calls.get(reply.id);
    if (call === undefined) return;
    this.calls.delete(reply.id);
    // Idle, the worker must not keep the process alive (the pipeline holds it while it waits for a result).
    if (this.calls.size === 0) this.worker?.unref();
    if (reply.error !== undefined) call.reject(new CallbackError(reply.error));
    else call.resolve(reply);
  }
}
