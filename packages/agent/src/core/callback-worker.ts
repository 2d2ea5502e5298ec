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
 * two thread wake-ups per message. The thread runs callback-thread.ts, compiled (see THREAD_FILE).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Message } from '@msgbricks/message';
import { CallbackError, type CallbackSource } from './callback';
import type { CallbackThreadData, Notice, Reply, Request } from './callback-thread';
import type { Callback } from './modules';

/**
 * The thread's entry point (callback-thread.ts), compiled: beside this file in the built package; from src (jest runs
 * the TypeScript sources) the same file in dist/, which `tsc -b` makes. A thread loads JavaScript only: see
 * docs/decisions.md, "Worker threads run the built code".
 */
const THREAD_FILE = join(__dirname, '..', '..', 'dist', 'core', 'callback-thread.js');

/** The callback worker died (process.exit() in user code, an exception thrown from a timer...). */
export class CallbackCrashError extends CallbackError {
  override readonly code = 'ERR_AGENT_CALLBACK_CRASH';
}

export interface WorkerCallbackOptions {
  /**
   * The worker died: user code called process.exit(), or threw from a timer. The call in progress (if any) fails with
   * this error; the next call starts a new worker (and calls `start(data)` again).
   */
  onCrash?: (error: CallbackError) => void;
  /** Milliseconds close() waits for the worker to exit before terminating it (default 5000). */
  exitTimeout?: number;
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

  private constructor(
    source: CallbackSource,
    private readonly options: WorkerCallbackOptions,
  ) {
    this.source = 'code' in source ? { code: source.code } : { path: resolve(source.path) };
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
    if (!existsSync(THREAD_FILE)) throw new CallbackError(`the callback thread is not built: no ${THREAD_FILE} (run tsc -b)`);
    const worker = new Worker(THREAD_FILE, { workerData: { source: this.source } satisfies CallbackThreadData });
    let failure: Error | undefined;
    await new Promise<void>((resolveReady, rejectReady) => {
      let ready = false;
      worker.on('message', (m: Notice) => {
        if (Array.isArray(m)) {
          for (const r of m) this.settle(r);
        } else if ('crashed' in m) {
          failure ??= new Error(m.crashed);
        } else if ('ready' in m) {
          ready = true;
          this.hooks = new Set(m.ready);
          this.worker = worker;
          worker.unref();
          resolveReady();
        } else {
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
