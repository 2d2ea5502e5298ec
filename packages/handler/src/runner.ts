/**
 * The handler runner: the loop every consumer of a spool would otherwise write (scan, lock, read, handle, remove,
 * retry, dead-letter, purge, watch, stop), around an application function.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { FileSystemError, type PurgeResult } from '@msgbricks/dirq';
import { errorOf } from '@msgbricks/errors';
import { DQS, Message, MessageError, type MessageQueue, MessageQueueNull, newMessageQueue } from '@msgbricks/message';
import { type AttemptRecord, type MessageSpool, readRecord, recordPath, removeRecord, writeRecord } from './attempts';
import { HandlerError, RetryLaterError } from './errors';
import { type Found, SimpleScan, WakeHints } from './scan';

/** The header field naming why a message was dead-lettered (the transfer agents use the same). */
export const DEAD_LETTER_REASON = 'x-msgbricks-dead-letter-reason';
/** The header field holding the last error of a dead-lettered message. */
export const DEAD_LETTER_ERROR = 'x-msgbricks-dead-letter-error';
/** The header field holding how many attempts failed before a message was dead-lettered. */
export const DEAD_LETTER_ATTEMPTS = 'x-msgbricks-attempts';

/** What a handler gets besides the message. */
export interface HandlerContext {
  /** The element's name in the spool (`XXXXXXXX/YYYYYYYYYYYYYY`). */
  readonly name: string;
  /** 1 for the first attempt; failed attempts so far + 1 (kept across restarts, shared by every runner). */
  readonly attempt: number;
  /** Fires at the attempt's `timeout` (reason: HandlerError ERR_HANDLER_TIMEOUT) or when a stop gives up waiting. */
  readonly signal: AbortSignal;
}

/** The application's function: resolve when the message is handled; throw or reject to have it retried. */
export type Handler = (message: Message, context: HandlerContext) => unknown;

export interface BackoffOptions {
  /** Delay (ms) after the first failure. Default 1000. */
  initial?: number;
  /** Each further failure multiplies the delay by this. Default 2. */
  factor?: number;
  /** Longest delay (ms). Default 300000 (5 minutes). */
  max?: number;
}

export interface ConsumeOptions {
  /** Handlers in flight at once in this process. Default 1. */
  concurrency?: number;
  /**
   * Failed attempts after which a message goes to `deadLetter`. Default: unlimited (retried for ever, with the
   * backoff). Needs `deadLetter`: a message is never dropped.
   */
  maxAttempts?: number;
  /** Where messages go after `maxAttempts`, and elements that are not valid messages: a queue spec or queue. */
  deadLetter?: string | Record<string, unknown> | MessageQueue;
  /** Milliseconds an attempt may take; then its signal fires and it counts as failed. Default 0: no limit. */
  timeout?: number;
  backoff?: BackoffOptions;
  /** Stop once no element is left to take (elements waiting for a retry are waited for). Default false. */
  drain?: boolean;
  /** Stops the runner (as stop()). */
  signal?: AbortSignal;
  /** Process signals that stop the runner gracefully (a second one stops it at once). Default SIGINT, SIGTERM. */
  stopSignals?: readonly NodeJS.Signals[];
  /** Milliseconds a stop waits for handlers in flight before aborting and releasing them. Default 10000. */
  stopTimeout?: number;
  /** Milliseconds between rescans when idle, the safety net of the file-system events. Default 2000. */
  rescanInterval?: number;
  /** Milliseconds between purges of stale locks and temporary files. Default 300000; 0: never. */
  purgeInterval?: number;
  /** Seconds after which a lock is stale (the purge breaks it). Default 600, python-dirq's. */
  maxLock?: number;
  /** Seconds after which a temporary file is stale. Default 300, python-dirq's. */
  maxTemp?: number;
  /** DQS: most elements locked and read per batch, ahead of the handlers. Default 64. */
  readAhead?: number;
}

/** The runner's counters, live: read them when you like (plain fields, updated as work happens). */
export interface HandlerCounters {
  /** Messages handled and removed. */
  handled: number;
  /** Failed attempts (thrown, rejected, timed out). */
  failed: number;
  /** Messages released for a later attempt (after a failure or a RetryLaterError). */
  retried: number;
  /** Messages (and corrupt elements) written to the dead-letter queue. */
  deadLettered: number;
  /** Handlers running now. */
  inFlight: number;
  /** Sum of the attempts' durations, in seconds (with `attempts`, the mean). */
  durationSeconds: number;
  /** Attempts finished. */
  attempts: number;
}

/**
 * Events (all optional to listen to; the runner prints nothing):
 * - `handled` {name, attempt, seconds}; `failed` {name, attempt, seconds, error, retryAt?}; `retry-later` {name,
 *   retryAt}; `timeout` {name, attempt}; `dead-lettered` {name, reason, error}; `corrupt` {name, error} (left in
 *   place when there is no dead-letter queue); `skipped` {name, error} (an element that cannot be read);
 *   `purged` {result} or {error}; `problem` {error, name?} (something that did not stop the runner);
 *   `stopping` {reason}; `abandoned` {name} (a handler still running when a stop gave up waiting: released).
 */
export type HandlerEventName =
  | 'handled'
  | 'failed'
  | 'retry-later'
  | 'timeout'
  | 'dead-lettered'
  | 'corrupt'
  | 'skipped'
  | 'purged'
  | 'problem'
  | 'stopping'
  | 'abandoned';

interface Item {
  name: string;
  /** DQS: the element's bytes, read under the lock. */
  bytes: Buffer | undefined;
  /** DQN: the message, read under the lock. */
  message: Message | undefined;
  record: AttemptRecord | undefined;
  /** performance.now() of the lock or of its last refresh. */
  touched: number;
}

class Attempt implements HandlerContext {
  private ctl: AbortController | undefined;
  /** Set when the attempt's outcome was decided without the handler (time-out, stop): its result is ignored. */
  settled = false;
  settle: (() => void) | undefined;
  readonly started: number;

  constructor(
    readonly item: Item,
    readonly message: Message,
    readonly attempt: number,
  ) {
    this.started = performance.now();
  }

  get name(): string {
    return this.item.name;
  }

  // Made on first use: most handlers never look, and a controller per message is measurable.
  get signal(): AbortSignal {
    this.ctl ??= new AbortController();
    return this.ctl.signal;
  }

  abort(reason: Error): void {
    this.ctl ??= new AbortController();
    this.ctl.abort(reason);
  }
}

function positiveInt(o: Record<string, unknown>, key: string, dflt: number, min: number, problems: string[]): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) problems.push(`${key}: ${String(v)} (an integer >= ${min})`);
  return typeof v === 'number' ? v : dflt;
}

function nonNegative(o: Record<string, unknown>, key: string, dflt: number, problems: string[]): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) problems.push(`${key}: ${String(v)} (a number >= 0)`);
  return typeof v === 'number' ? v : dflt;
}

const KNOWN = new Set([
  'concurrency',
  'maxAttempts',
  'deadLetter',
  'timeout',
  'backoff',
  'drain',
  'signal',
  'stopSignals',
  'stopTimeout',
  'rescanInterval',
  'purgeInterval',
  'maxLock',
  'maxTemp',
  'readAhead',
]);

interface Settings {
  concurrency: number;
  maxAttempts: number;
  timeout: number;
  backoff: Required<BackoffOptions>;
  drain: boolean;
  stopTimeout: number;
  rescanInterval: number;
  purgeInterval: number;
  maxLock: number;
  maxTemp: number;
  readAhead: number;
}

/** Options checked all at once: one HandlerError ERR_HANDLER_OPTION naming every bad one. */
function settings(options: ConsumeOptions): Settings {
  const o = options as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) problems.push(`${k}: unknown option`);
  const b = (options.backoff ?? {}) as Record<string, unknown>;
  const s: Settings = {
    concurrency: positiveInt(o, 'concurrency', 1, 1, problems),
    maxAttempts: o.maxAttempts === undefined ? Number.POSITIVE_INFINITY : positiveInt(o, 'maxAttempts', 1, 1, problems),
    timeout: nonNegative(o, 'timeout', 0, problems),
    backoff: {
      initial: nonNegative(b, 'initial', 1000, problems),
      factor: nonNegative(b, 'factor', 2, problems),
      max: nonNegative(b, 'max', 300_000, problems),
    },
    drain: options.drain === true,
    stopTimeout: nonNegative(o, 'stopTimeout', 10_000, problems),
    rescanInterval: positiveInt(o, 'rescanInterval', 2000, 1, problems),
    purgeInterval: nonNegative(o, 'purgeInterval', 300_000, problems),
    maxLock: nonNegative(o, 'maxLock', 600, problems),
    maxTemp: nonNegative(o, 'maxTemp', 300, problems),
    readAhead: positiveInt(o, 'readAhead', 64, 1, problems),
  };
  if (o.maxAttempts !== undefined && o.deadLetter === undefined)
    problems.push('maxAttempts: needs deadLetter (a message is never dropped)');
  if (problems.length > 0) throw new HandlerError('ERR_HANDLER_OPTION', `invalid options: ${problems.join('; ')}`);
  return s;
}

/** Errors of one element rather than of the spool: that element is skipped, the others are handled. */
const ELEMENT_ERRNOS = new Set(['ELOOP', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR']);

function elementFault(err: unknown): err is FileSystemError {
  return err instanceof FileSystemError && ELEMENT_ERRNOS.has(err.errno);
}

/** One line: what a failure says, for an attempt record and a dead-letter header. */
function describe(err: unknown): string {
  const e = errorOf(err);
  return `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`.replace(/\s*\n\s*/g, ' ').slice(0, 1000);
}

/** Most elements removed in one batch. */
const MAX_REMOVE_BATCH = 256;
/** Handled elements removed as soon as this many are waiting. */
const REMOVE_BATCH = 64;
/** The read-ahead aims at holding about this much work (ms) locked ahead of the handlers. */
const AHEAD_MS = 20;

/**
 * A running consumer of one spool (see consume()). `done` resolves with the counters once it has stopped (drained,
 * stopped, signalled) and rejects when the spool itself fails (it disappears, the disk fails).
 */
export class Consumer extends EventEmitter {
  readonly queue: MessageSpool;
  readonly counters: HandlerCounters = {
    handled: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    inFlight: 0,
    durationSeconds: 0,
    attempts: 0,
  };
  readonly done: Promise<HandlerCounters>;
  private readonly s: Settings;
  private readonly deadLetter: MessageQueue | undefined;
  private readonly scan: SimpleScan | undefined;
  private dqnIterator: AsyncIterator<string> | undefined;
  private readonly hints: WakeHints;
  /** Locked and read, not started yet (a ring would save nothing measurable: shift() on a short array). */
  private ready: Item[] = [];
  private readonly active = new Set<Attempt>();
  private filling: Promise<boolean> | undefined;
  private batch: number;
  private lastFill = 0;
  private takenSinceFill = 0;
  private foundInPass = false;
  private nextDue = Number.POSITIVE_INFINITY;
  /** Elements that cannot be read or are not messages (without a dead-letter queue): stepped over. */
  private readonly skipped = new Set<string>();
  private removals: string[] = [];
  /** Of the removals, those with an attempt record to remove after them. */
  private readonly withRecord = new Set<string>();
  private removalScheduled = false;
  private removing: Promise<void> | undefined;
  private stopping = false;
  private stopReason = '';
  private fatal: unknown;
  private idleWake: (() => void) | undefined;
  /** Something changed while nobody was idle: the next idle() returns at once. */
  private poked = false;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private lastPurge = Date.now();
  private readonly stopSignals: readonly NodeJS.Signals[];
  private signalCount = 0;
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.signalCount++;
    this.stop(this.signalCount > 1 ? { now: true, reason: sig } : { reason: sig });
  };
  private readonly onAbort = (): void => this.stop({ reason: 'aborted' });
  private forceStop: (() => void) | undefined;
  private stopNow = false;
  private stopGate: () => void = () => undefined;
  private readonly stopped = new Promise<void>((resolve) => {
    this.stopGate = resolve;
  });
  /** Failures being recorded (attempt record, release) after their handler settled. */
  private readonly recording = new Set<Promise<void>>();

  constructor(queue: MessageSpool, handler: Handler, options: ConsumeOptions = {}) {
    super();
    this.s = settings(options);
    this.queue = queue;
    this.deadLetter =
      options.deadLetter === undefined
        ? undefined
        : typeof options.deadLetter === 'string' || !('addMessage' in options.deadLetter)
          ? newMessageQueue(options.deadLetter as string | Record<string, unknown>)
          : (options.deadLetter as MessageQueue);
    this.scan = queue instanceof DQS ? new SimpleScan(queue.path, (n) => this.orphan(n)) : undefined;
    this.hints = new WakeHints(queue);
    this.batch = this.s.concurrency;
    const refresh = this.s.maxLock > 0 ? (this.s.maxLock * 1000) / 3 : Number.POSITIVE_INFINITY;
    const tick = Math.max(10, Math.min(1000, this.s.timeout > 0 ? this.s.timeout / 10 : 1000, refresh));
    // One timer for every attempt's time-out and lock refresh, not one per message.
    this.sweepTimer = setInterval(() => this.sweep(refresh), tick);
    this.sweepTimer.unref();
    this.stopSignals = options.stopSignals ?? ['SIGINT', 'SIGTERM'];
    for (const sig of this.stopSignals) process.on(sig, this.onSignal);
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.stop({ reason: 'aborted' });
    this.done = this.run(handler, options.signal);
  }

  /**
   * Stops: no new attempt starts; attempts in flight are awaited up to `stopTimeout` (at once with `now`), then
   * aborted and their messages released. Elements read ahead are released. `done` resolves after.
   */
  stop(options: { now?: boolean; reason?: string } = {}): void {
    if (!this.stopping) {
      this.stopping = true;
      this.stopReason = options.reason ?? 'stop()';
      this.emit('stopping', { reason: this.stopReason });
      this.idleWake?.();
      this.stopGate();
    }
    if (options.now) {
      this.stopNow = true;
      this.forceStop?.();
    }
  }

  private async run(handler: Handler, signal: AbortSignal | undefined): Promise<HandlerCounters> {
    const workers: Promise<void>[] = [];
    for (let i = 0; i < this.s.concurrency; i++) workers.push(this.worker(handler));
    const all = Promise.all(workers).then(() => undefined);
    try {
      // Once stopped, the workers get `stopTimeout` to finish what they run; a handler that never returns is left.
      await Promise.race([all, this.stopped.then(() => this.stopBound(all))]);
    } catch (err) {
      this.fatal ??= err;
      this.stopping = true;
    }
    try {
      await this.finish();
    } finally {
      clearInterval(this.sweepTimer);
      this.hints.disarm();
      for (const sig of this.stopSignals) process.off(sig, this.onSignal);
      signal?.removeEventListener('abort', this.onAbort);
    }
    if (this.fatal !== undefined) throw this.fatal;
    return this.counters;
  }

  private stopBound(all: Promise<void>): Promise<void> {
    if (this.stopNow) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.s.stopTimeout);
      this.forceStop = resolve;
    });
    return Promise.race([all, bound]).finally(() => clearTimeout(timer));
  }

  /** After the workers or the stop bound: abort and release what still runs, release what is left, flush removals. */
  private async finish(): Promise<void> {
    for (const a of [...this.active]) {
      if (a.settled) continue;
      a.settled = true;
      this.active.delete(a);
      this.counters.inFlight--;
      a.abort(new HandlerError('ERR_HANDLER_STOPPED', 'the runner stopped'));
      a.settle?.();
      await this.release(a.item.name);
      this.emit('abandoned', { name: a.name });
    }
    await Promise.all(this.recording);
    await this.filling?.catch(() => false);
    for (const item of this.ready.splice(0)) await this.release(item.name);
    await this.flushRemovals();
    // A batch started before (by a worker) may still be going: done means removed.
    while (this.removing !== undefined) await this.removing;
  }

  private async release(name: string): Promise<void> {
    await this.queue.unlock(name, true).catch((err: unknown) => this.emit('problem', { name, error: err }));
  }

  private async worker(handler: Handler): Promise<void> {
    while (!this.stopping) {
      const item = this.ready.shift();
      if (item === undefined) {
        this.filling ??= this.fill().finally(() => {
          this.filling = undefined;
        });
        if (!(await this.filling)) return;
        continue;
      }
      this.takenSinceFill++;
      await this.attempt(handler, item);
    }
  }

  /** Tells the idle wait (and a stop waiting for the last handler) that something changed. */
  private poke(): void {
    if (this.idleWake !== undefined) this.idleWake();
    else this.poked = true;
  }

  // ---- finding and locking work

  /** Fills `ready` with the next batch; false when the runner is to stop (drained, stopped). */
  private async fill(): Promise<boolean> {
    // N.B. a batch of synchronous handlers and the native binding's calls are all microtasks: without a turn of the
    // event loop per batch, a busy pass would hold up timers (time-outs, lock refresh), signals and file events.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.adaptBatch();
    let armed = false;
    try {
      for (;;) {
        if (this.stopping) return false;
        const n = await this.takeBatch();
        if (n > 0) return true;
        if (n < 0) continue; // found elements but others took them, or they wait for a retry: go on
        // A whole pass found nothing to take.
        if (this.s.drain && this.active.size === 0 && this.nextDue === Number.POSITIVE_INFINITY) {
          this.stop({ reason: 'drained' });
          return false;
        }
        if (!armed && !this.s.drain) {
          // Events from now on wake us; one more pass covers what arrived before.
          await this.hints.arm(() => this.poke());
          armed = true;
          continue;
        }
        await this.idle();
        this.hints.disarm();
        armed = false;
      }
    } finally {
      if (armed) this.hints.disarm();
    }
  }

  /** Waits for a hint, a retry coming due, a handler finishing, a stop, or the rescan interval. */
  private async idle(): Promise<void> {
    const wait = Math.max(1, Math.min(this.s.rescanInterval, this.nextDue - Date.now()));
    this.nextDue = Number.POSITIVE_INFINITY;
    // RACE: what happened since the last pass began (a hint while arming, a release) was not waited for: go on.
    if (this.poked) {
      this.poked = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.idleWake = done;
    });
    this.idleWake = undefined;
  }

  /** The read-ahead batch: about AHEAD_MS of work at the rate seen, between `concurrency` and `readAhead`. */
  private adaptBatch(): void {
    const now = performance.now();
    if (this.lastFill > 0 && this.takenSinceFill > 0) {
      const perItem = (now - this.lastFill) / this.takenSinceFill;
      const want = Math.ceil(AHEAD_MS / Math.max(perItem, 0.001));
      this.batch = Math.max(this.s.concurrency, Math.min(this.s.readAhead, want));
    }
    this.lastFill = now;
    this.takenSinceFill = 0;
  }

  /**
   * Locks and reads the next batch into `ready`: resolves to how many were taken, or -1 when the pass went on but
   * none could be taken this time, 0 when a whole pass found nothing.
   */
  private async takeBatch(): Promise<number> {
    if (this.scan !== undefined) return this.takeSimple(this.scan, this.queue as DQS);
    return this.takeNormal();
  }

  /** At the end of a pass (busy or not, so that a spool never empty is purged too): -1 if it found work, else 0. */
  private async endOfPass(): Promise<number> {
    await this.maybePurge();
    const found = this.foundInPass;
    this.foundInPass = false;
    return found ? -1 : 0;
  }

  private async takeSimple(scan: SimpleScan, q: DQS): Promise<number> {
    const found = await scan.next(this.batch);
    if (found.length === 0) return this.endOfPass();
    const names: string[] = [];
    const records = new Map<string, AttemptRecord>();
    const now = Date.now();
    for (const f of found) {
      if (this.skipped.has(f.name)) continue;
      if (f.hasRecord) {
        const r = await this.recordOf(f);
        if (r !== undefined && r.retryAt > now) {
          this.due(r.retryAt);
          continue;
        }
        if (r !== undefined) records.set(f.name, r);
      }
      names.push(f.name);
    }
    if (names.length === 0) return -1;
    this.foundInPass = true;
    const results = await q.lockGetMany(names);
    const touched = performance.now();
    let taken = 0;
    let error: unknown;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const name = names[i] as string;
      if (Buffer.isBuffer(r)) {
        this.ready.push({ name, bytes: r, message: undefined, record: records.get(name), touched });
        taken++;
      } else if (r !== null) {
        if (elementFault(r)) this.skip(name, r);
        else error ??= r;
      }
    }
    if (error !== undefined) throw error;
    return taken > 0 ? taken : -1;
  }

  private async recordOf(f: Found): Promise<AttemptRecord | undefined> {
    try {
      return await readRecord(this.queue, f.name);
    } catch (err) {
      this.emit('problem', { name: f.name, error: err });
      return undefined;
    }
  }

  private async takeNormal(): Promise<number> {
    const q = this.queue;
    let taken = 0;
    const now = Date.now();
    while (taken < this.batch) {
      this.dqnIterator ??= q[Symbol.asyncIterator]();
      const r = await this.dqnIterator.next();
      if (r.done) {
        this.dqnIterator = undefined;
        return taken > 0 ? taken : this.endOfPass();
      }
      const name = r.value;
      if (this.skipped.has(name)) continue;
      let locked: boolean;
      try {
        locked = await q.lock(name);
      } catch (err) {
        if (!elementFault(err)) throw err;
        this.skip(name, err);
        continue;
      }
      if (!locked) continue;
      this.foundInPass = true;
      const record = await this.recordOf({ name, hasRecord: true });
      if (record !== undefined && record.retryAt > now) {
        this.due(record.retryAt);
        await this.release(name);
        continue;
      }
      let message: Message;
      try {
        message = await q.getMessage(name);
      } catch (err) {
        if (err instanceof MessageError) {
          await this.corrupt(name, undefined, err);
          continue;
        }
        await this.release(name);
        if (!elementFault(err)) throw err;
        this.skip(name, err);
        continue;
      }
      this.ready.push({ name, bytes: undefined, message, record, touched: performance.now() });
      taken++;
    }
    return taken;
  }

  private due(at: number): void {
    if (at < this.nextDue) this.nextDue = at;
  }

  private skip(name: string, error: Error): void {
    this.skipped.add(name);
    this.emit('skipped', { name, error });
  }

  private orphan(name: string): void {
    removeRecord(this.queue, name).catch((err: unknown) => this.emit('problem', { name, error: err }));
  }

  // ---- one attempt

  private async attempt(handler: Handler, item: Item): Promise<void> {
    let message = item.message;
    if (message === undefined) {
      try {
        message = (this.queue as DQS).parseMessage(item.name, item.bytes as Buffer);
      } catch (err) {
        if (!(err instanceof MessageError)) throw err;
        await this.corrupt(item.name, item.bytes, err);
        return;
      }
    }
    item.bytes = undefined;
    const a = new Attempt(item, message, (item.record?.attempts ?? 0) + 1);
    this.active.add(a);
    this.counters.inFlight++;
    let failure: unknown;
    let failed = false;
    try {
      if (this.s.timeout > 0) await this.bounded(handler, message, a);
      else await handler(message, a);
    } catch (err) {
      failed = true;
      failure = err;
    }
    if (a.settled) return; // decided by a time-out or a stop
    a.settled = true;
    this.counters.inFlight--;
    const seconds = (performance.now() - a.started) / 1000;
    this.counters.attempts++;
    this.counters.durationSeconds += seconds;
    if (!failed) {
      this.counters.handled++;
      this.removeLater(item.name, item.record !== undefined);
      if (this.listenerCount('handled') > 0) this.emit('handled', { name: item.name, attempt: a.attempt, seconds });
    } else await this.record(a, this.failed(a, message, failure, seconds));
    this.active.delete(a);
    if (this.stopping || (this.s.drain && this.active.size === 0)) this.poke();
  }

  /** Tracks a failure being recorded (a stop waits for it); its own errors are reported, not thrown. */
  private record(a: Attempt, p: Promise<void>): Promise<void> {
    const r = p.catch(async (e: unknown) => {
      this.emit('problem', { name: a.name, error: e });
      // Not recorded, not dead-lettered: the element goes back as it is, for another attempt.
      await this.release(a.name);
    });
    this.recording.add(r);
    return r.finally(() => this.recording.delete(r));
  }

  /** Runs the handler, settling early when the sweep times the attempt out (the handler's result is then ignored). */
  private bounded(handler: Handler, message: Message, a: Attempt): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      a.settle = resolve;
      Promise.resolve()
        .then(() => handler(message, a))
        .then(() => resolve(), reject);
    });
  }

  private async failed(a: Attempt, message: Message, failure: unknown, seconds: number): Promise<void> {
    const name = a.name;
    const prev = a.item.record;
    if (failure instanceof RetryLaterError) {
      const retryAt = Date.now() + (failure.delay ?? this.backoff(Math.max(1, prev?.attempts ?? 1)));
      await this.releaseFor(name, { attempts: prev?.attempts ?? 0, retryAt, error: prev?.error ?? '' });
      this.emit('retry-later', { name, retryAt });
      return;
    }
    this.counters.failed++;
    const attempts = (prev?.attempts ?? 0) + 1;
    const error = describe(failure);
    if (attempts >= this.s.maxAttempts) {
      this.emit('failed', { name, attempt: a.attempt, seconds, error: failure });
      await this.deadLettered(name, message, `failed ${attempts} attempts`, error, attempts, prev !== undefined);
      return;
    }
    const retryAt = Date.now() + this.backoff(attempts);
    this.emit('failed', { name, attempt: a.attempt, seconds, error: failure, retryAt });
    await this.releaseFor(name, { attempts, retryAt, error });
  }

  /** Records the attempt, then releases the element for a later one. */
  private async releaseFor(name: string, record: AttemptRecord): Promise<void> {
    try {
      await writeRecord(this.queue, name, record);
    } catch (err) {
      // Without its record the element is retried at once, and its failures not counted: said, not fatal.
      this.emit('problem', { name, error: err });
    }
    this.counters.retried++;
    this.due(record.retryAt);
    await this.release(name);
    this.poke();
  }

  private backoff(failures: number): number {
    const { initial, factor, max } = this.s.backoff;
    return Math.min(max, initial * factor ** Math.max(0, failures - 1));
  }

  private async deadLettered(
    name: string,
    message: Message,
    reason: string,
    error: string,
    attempts: number,
    hasRecord: boolean,
  ): Promise<void> {
    const dlq = this.deadLetter as MessageQueue;
    const header = message
      .headerEntries()
      .filter(([k]) => k !== DEAD_LETTER_REASON && k !== DEAD_LETTER_ERROR && k !== DEAD_LETTER_ATTEMPTS);
    header.push([DEAD_LETTER_REASON, reason], [DEAD_LETTER_ERROR, error], [DEAD_LETTER_ATTEMPTS, String(attempts)]);
    // N.B. added first, removed after: a crash in between leaves the message in both (at least once).
    await dlq.addMessage(message.with({ header }));
    this.counters.deadLettered++;
    await this.queue.remove(name);
    if (hasRecord) await removeRecord(this.queue, name);
    this.emit('dead-lettered', { name, reason, error });
  }

  /** An element that is not a valid message: to the dead-letter queue (as its bytes) if there is one, else skipped. */
  private async corrupt(name: string, bytes: Buffer | undefined, err: MessageError): Promise<void> {
    this.emit('corrupt', { name, error: err });
    if (this.deadLetter === undefined) {
      this.skipped.add(name);
      await this.release(name);
      return;
    }
    const body =
      bytes ?? Buffer.from(JSON.stringify(await (this.queue as Exclude<MessageSpool, DQS>).get(name).catch(() => ({}))));
    await this.deadLettered(
      name,
      new Message({ body }),
      'corrupt',
      describe(err),
      0,
      fs.existsSync(recordPath(this.queue, name)),
    );
  }

  // ---- removal in batches

  /**
   * Queues a handled element for removal: a full batch is removed at once (the native binding does it in one call),
   * what is left at the end of the turn after it.
   */
  private removeLater(name: string, record: boolean): void {
    this.removals.push(name);
    if (record) this.withRecord.add(name);
    if (this.removals.length >= REMOVE_BATCH) this.startRemoving();
    else if (!this.removalScheduled) {
      this.removalScheduled = true;
      setImmediate(() => {
        this.removalScheduled = false;
        this.startRemoving();
      });
    }
  }

  private startRemoving(): void {
    this.removing ??= this.flushRemovals()
      .catch((err: unknown) => {
        this.fatal ??= err;
        this.stop({ reason: 'error' });
      })
      .finally(() => {
        this.removing = undefined;
      });
  }

  /** Removes the handled elements, batch after batch; a removal that fails leaves the element, released. */
  private async flushRemovals(): Promise<void> {
    while (this.removals.length > 0) {
      const names = this.removals.splice(0, MAX_REMOVE_BATCH);
      const errors =
        this.queue instanceof DQS
          ? await this.queue.removeMany(names)
          : await Promise.all(
              names.map((n) =>
                this.queue.remove(n).then(
                  () => undefined,
                  (e: Error) => e,
                ),
              ),
            );
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        const err = errors[i];
        const record = this.withRecord.size > 0 && this.withRecord.delete(name);
        if (err !== undefined) {
          this.emit('problem', { name, error: err });
          await this.release(name);
        } else if (record) await removeRecord(this.queue, name).catch((e: unknown) => this.emit('problem', { error: e }));
      }
    }
  }

  // ---- time-outs, lock refresh, purge

  private sweep(refreshMs: number): void {
    const now = performance.now();
    if (this.s.timeout > 0) {
      for (const a of this.active) {
        if (a.settled || now - a.started < this.s.timeout) continue;
        a.settled = true;
        this.counters.inFlight--;
        this.emit('timeout', { name: a.name, attempt: a.attempt });
        const err = new HandlerError('ERR_HANDLER_TIMEOUT', `timed out after ${this.s.timeout} ms`);
        a.abort(err);
        const seconds = (now - a.started) / 1000;
        this.counters.attempts++;
        this.counters.durationSeconds += seconds;
        // The worker goes on at once; the failure is recorded behind it.
        a.settle?.();
        void this.record(a, this.failed(a, a.message, err, seconds)).finally(() => {
          this.active.delete(a);
          this.poke();
        });
      }
    }
    if (refreshMs !== Number.POSITIVE_INFINITY) {
      for (const a of this.active) if (now - a.item.touched >= refreshMs) this.refresh(a.item, now);
      for (const item of this.ready) if (now - item.touched >= refreshMs) this.refresh(item, now);
    }
  }

  /** Keeps a held lock fresh, so that no purge (ours, another runner's, python-dirq's) breaks it. */
  private refresh(item: Item, now: number): void {
    item.touched = now;
    // DQS: the element and its lock are one inode. DQN: both purges (python-dirq's too) judge a lock by the element
    // directory's time, not by `locked`'s.
    const p = `${this.queue.path}/${item.name}`;
    const t = new Date();
    fs.utimes(p, t, t, (err) => {
      if (err) this.emit('problem', { name: item.name, error: new FileSystemError('utime', p, err) });
    });
  }

  private async maybePurge(): Promise<void> {
    if (this.s.purgeInterval === 0 || Date.now() - this.lastPurge < this.s.purgeInterval) return;
    this.lastPurge = Date.now();
    let outcome: { result: PurgeResult } | { error: unknown };
    try {
      outcome = { result: await this.queue.purge({ maxlock: this.s.maxLock, maxtemp: this.s.maxTemp }) };
    } catch (err) {
      outcome = { error: err };
    }
    this.emit('purged', outcome);
  }
}

/**
 * Runs `handler` on every message of the spool `spool` (a queue spec as the agents take, `path=/var/spool/x
 * type=DQS`, or a DQS/DQN object), until stopped: see ConsumeOptions and docs/handlers.md. The element is removed
 * only once the handler resolved; a throw releases it for a later attempt.
 */
export function consume(
  spool: string | Record<string, unknown> | MessageQueue,
  handler: Handler,
  options: ConsumeOptions = {},
): Consumer {
  if (typeof handler !== 'function') throw new HandlerError('ERR_HANDLER_OPTION', 'handler: not a function');
  const queue =
    typeof spool === 'string' || !('addMessage' in spool) ? newMessageQueue(spool as string | Record<string, unknown>) : spool;
  if (queue instanceof MessageQueueNull)
    throw new HandlerError('ERR_HANDLER_OPTION', 'spool: a DQS or DQN queue (a NULL queue has nothing to consume)');
  return new Consumer(queue as MessageSpool, handler, options);
}
