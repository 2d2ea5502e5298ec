import * as fs from 'node:fs';
import { FileSystemError, type PurgeResult } from '@msgbricks/dirq';
import { type DQN, DQS, type Message, MessageError, type MessageQueueNull } from '@msgbricks/message';
import { abortableSleep, Backoff } from './failover';
import { LockJournal, type LockJournalEvent } from './journal';
import type { Delivery, Incoming, Outgoing } from './modules';

export type MessageSpool = DQS | DQN;

/** A periodic purge's outcome: its result (with the entries it left), or the error that stopped it. */
export type PurgeOutcome = { result: PurgeResult } | { error: Error };

export interface QueueIncomingOptions {
  /** Remove what was transferred (otherwise it is unlocked and stays). */
  remove?: boolean;
  /** Start over at the end of the queue instead of finishing (daemon mode). */
  loop?: boolean;
  /** Where this instance records its locks (see LockJournal); none: stale locks wait for the purge. */
  journal?: string;
  /** Told when the journal cannot be written (full file system) and when it can again: for the command's log. */
  onJournalEvent?: (event: LockJournalEvent) => void;
  /** Seconds between purges of the queue (stale temporaries and locks), as stompclt's 300. */
  purgeInterval?: number;
  /**
   * Told after each periodic purge: what it did and what it left in place (its warnings), or why it failed as a
   * whole. A purge never stops the transfer: its outcome is for the command's log.
   */
  onPurge?: (outcome: PurgeOutcome) => void;
  /**
   * Told of an element that cannot be locked or read (a symbolic link: ELOOP; no permission: EACCES, EPERM; a
   * directory where a file should be...), once per run: the element is skipped by every later pass, and the rest
   * of the spool goes on. Resolve 'remove' once it is recorded (a dead-letter spool) to have it removed (only a
   * link can be: its lock is taken without reading it, and removing it removes the link, never its target);
   * 'skip' leaves it in place. Without this, such elements are skipped.
   */
  onUnreadable?: (name: string, error: Error) => Promise<'remove' | 'skip'>;
  /** Told once of each stray file with a counter directory's name at the top of the queue (it is stepped over). */
  onStray?: (path: string) => void;
  /** Takes an element that is not a valid message; it is removed from the queue once this resolves. */
  onCorrupt?: (name: string, bytes: Buffer, error: MessageError) => Promise<void>;
  /**
   * DQS only: elements locked and read ahead per batch, on a helper thread (QueueSimple.lockGetMany),
   * while the pipeline sends the previous ones; up to twice this many are held locked ahead of the
   * pipeline. Acked elements are removed in batches on another helper thread (QueueSimple.removeMany).
   * Default 64; 0 locks, reads and removes one element at a time on the event loop.
   */
  readAhead?: number;
  /**
   * Told when the queue cannot be listed (EACCES, EPERM, EIO...: a persistent error of the spool, not of one element)
   * and when it can again. Meanwhile next() finds nothing (the pipeline idles) and the listing is tried again with
   * backoff (`faultRetry`); what was read ahead is still delivered.
   */
  onFault?: (event: SpoolFaultEvent) => void;
  /** Milliseconds between listings while the queue cannot be listed. Default {initialDelay: 100, maxDelay: 5000}. */
  faultRetry?: { initialDelay?: number; maxDelay?: number };
}

/**
 * A spool side that started failing with a persistent file-system error (`unusable`, or `full` for ENOSPC and
 * EDQUOT), again (`attempt` counts), or that works again (`resumed`).
 */
export type SpoolFaultEvent =
  | { type: 'full' | 'unusable'; error: Error; errno: string; retryInMs: number; attempt: number }
  | { type: 'resumed'; waitedMs: number };

/** Errors of a spool that last until someone acts (permissions, a read-only or failing file system). */
const UNUSABLE_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS', 'EIO']);
/** Errors a full file system gives: they go away when a consumer makes room. */
const FULL_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);

function errnoOf(err: unknown): string | undefined {
  const e = err as { errno?: unknown; code?: unknown } | undefined;
  if (typeof e?.errno === 'string') return e.errno;
  return typeof e?.code === 'string' ? e.code : undefined;
}

/** 'full', 'unusable' or undefined (not a fault of the spool as a whole: thrown as before). */
function spoolFault(err: unknown): 'full' | 'unusable' | undefined {
  const errno = errnoOf(err) ?? '';
  if (FULL_ERRNOS.has(errno)) return 'full';
  return UNUSABLE_ERRNOS.has(errno) ? 'unusable' : undefined;
}

/**
 * The backoff of one spool side while it fails: the first failure starts it, each later one grows it, the first
 * success ends it; every step is an event for the command (one log line per state change, metrics).
 */
class FaultState {
  private since: number | undefined;
  private attempt = 0;
  private backoff: Backoff;
  /** Not before this (Date.now()): the next attempt. */
  retryAt = 0;

  constructor(
    private readonly retry: { initialDelay?: number; maxDelay?: number } | undefined,
    private readonly onEvent: ((event: SpoolFaultEvent) => void) | undefined,
  ) {
    this.backoff = this.newBackoff();
  }

  private newBackoff(): Backoff {
    return new Backoff(this.retry?.initialDelay ?? 100, this.retry?.maxDelay ?? 5000, 2);
  }

  get failing(): boolean {
    return this.since !== undefined;
  }

  /** A failure: milliseconds to wait before the next attempt. */
  failed(type: 'full' | 'unusable', error: Error): number {
    this.since ??= Date.now();
    this.attempt++;
    const wait = this.backoff.nextWait();
    this.backoff.grow();
    this.retryAt = Date.now() + wait;
    const errno = errnoOf(error) ?? 'EUNKNOWN';
    this.onEvent?.({ type, error, errno, retryInMs: Math.round(wait), attempt: this.attempt });
    return wait;
  }

  succeeded(): void {
    if (this.since === undefined) return;
    const waitedMs = Date.now() - this.since;
    this.since = undefined;
    this.attempt = 0;
    this.retryAt = 0;
    this.backoff = this.newBackoff();
    this.onEvent?.({ type: 'resumed', waitedMs });
  }
}

/** The queue could not be listed (a spool fault): next() finds nothing this time. */
class ListingFault extends Error {}

/** Errors of one element rather than of the spool: that element is skipped, the others are transferred. */
const ELEMENT_ERRNOS = new Set(['ELOOP', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR']);

function elementFault(err: unknown): err is Error {
  return err instanceof FileSystemError && ELEMENT_ERRNOS.has(err.errno);
}

/** Most elements removed in one batch. */
const MAX_REMOVE_BATCH = 256;

interface Ahead {
  name: string;
  bytes: Buffer;
}

interface Removal {
  name: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * A directory queue as the incoming side: lock, read; ack removes (or unlocks), release unlocks.
 *
 * With a DQS and `readAhead` (the default), elements are locked and read in batches on a helper thread,
 * a batch ahead of the pipeline, in python-dirq's order; the journal records each batch (one write)
 * before any of its locks is taken, so a crash leaves nothing locked that the next instance does not
 * release at once. ack() resolves only once the element is removed (in batches, on another thread):
 * an acked element is gone, even after a crash.
 */
export class QueueIncoming implements Incoming {
  readonly description: string;
  private iterator: AsyncIterator<string> | undefined;
  /** Everything we hold locked: read ahead, delivered and not yet acked, being removed. */
  private readonly pending = new Set<string>();
  private journal: LockJournal | undefined;
  private lastPurge = 0;
  private sawElement = false;
  private readonly batch: number;
  /**
   * Read ahead and not yet delivered, oldest first (at most two batches: next() takes from the head while the next
   * batch is appended). Taken with shift(), so that a delivered element's bytes are not held: the array is never
   * empty while read-ahead keeps up, and an index into it would have kept every element read until the end.
   */
  private ahead: Ahead[] = [];
  private filling: Promise<void> | undefined;
  private fillError: unknown;
  /** The current pass has no names left to read ahead. */
  private exhausted = false;
  private removals: Removal[] = [];
  private removing: Promise<void> | undefined;
  /** Elements that could not be locked or read: every later pass steps over them (reported once). */
  private readonly skipped = new Set<string>();
  private readonly straysTold = new Set<string>();
  private readonly fault: FaultState;

  constructor(
    private readonly queue: MessageSpool,
    private readonly options: QueueIncomingOptions = {},
  ) {
    this.description = `queue ${queue.path}`;
    const k = options.readAhead ?? 64;
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`readAhead: ${String(k)} (an integer >= 0)`);
    this.batch = queue instanceof DQS ? k : 0;
    this.fault = new FaultState(options.faultRetry, options.onFault);
  }

  async open(): Promise<void> {
    if (this.options.journal !== undefined) {
      this.journal = new LockJournal(this.options.journal, this.options.onJournalEvent);
      // What the previous instance of this agent had locked when it died is released at once.
      for (const name of this.journal.recover()) await this.queue.unlock(name, true).catch(() => false);
    }
    this.lastPurge = Date.now();
  }

  async next(): Promise<Delivery | null | undefined> {
    // While the queue cannot be listed: nothing until the next attempt, but what was read ahead still goes.
    if (this.fault.failing && Date.now() < this.fault.retryAt && this.ahead.length === 0) return undefined;
    try {
      return await (this.batch > 0 ? this.nextAhead() : this.nextOne());
    } catch (err) {
      if (err instanceof ListingFault) return undefined;
      throw err;
    }
  }

  /**
   * The next name of the current pass (a new pass if none). A listing that fails with a spool fault ends the pass,
   * starts or grows the backoff and throws a ListingFault; one that works again ends the backoff.
   */
  private async nextName(): Promise<IteratorResult<string>> {
    this.iterator ??= this.queue[Symbol.asyncIterator]();
    let r: IteratorResult<string>;
    try {
      r = await this.iterator.next();
    } catch (err) {
      this.iterator = undefined;
      const type = spoolFault(err);
      if (type === undefined) throw err;
      this.fault.failed(type, err as Error);
      throw new ListingFault('the queue cannot be listed', { cause: err });
    }
    this.fault.succeeded();
    return r;
  }

  private async nextOne(): Promise<Delivery | null | undefined> {
    for (;;) {
      const r = await this.nextName();
      if (r.done) {
        this.iterator = undefined;
        const end = await this.endOfPass();
        if (end !== false) return end;
        continue;
      }
      const name = r.value;
      if (this.pending.has(name) || this.skipped.has(name)) continue;
      let locked: boolean;
      try {
        locked = await this.tryLock(name);
      } catch (err) {
        await this.unreadable(name, err);
        continue;
      }
      if (!locked) continue;
      this.sawElement = true;
      this.pending.add(name);
      try {
        return { id: name, message: await this.queue.getMessage(name) };
      } catch (err) {
        if (err instanceof MessageError && this.options.onCorrupt !== undefined) {
          await this.corrupt(name, await this.rawBytes(name), err);
          continue;
        }
        await this.release(name);
        await this.unreadable(name, err);
      }
    }
  }

  /** At the end of a pass: null (finished), undefined (an empty pass: idle first) or false (go on). */
  private async endOfPass(): Promise<null | undefined | false> {
    for (const p of this.queue.strays) {
      if (this.straysTold.has(p)) continue;
      this.straysTold.add(p);
      this.options.onStray?.(p);
    }
    await this.maybePurge();
    if (!this.options.loop) return null;
    const found = this.sawElement;
    this.sawElement = false;
    return found ? false : undefined;
  }

  /**
   * An element that could not be locked or read (and is not locked by us): skipped from now on, reported, and
   * removed if the reporter says so. Errors of the spool itself (ENOSPC, EIO...) are thrown.
   */
  private async unreadable(name: string, err: unknown): Promise<void> {
    if (!elementFault(err)) throw err;
    this.skipped.add(name);
    const verdict = (await this.options.onUnreadable?.(name, err)) ?? 'skip';
    // RACE: locked by someone else meanwhile: then it stays, skipped.
    if (verdict === 'remove' && (await this.queue.lock(name).catch(() => false))) {
      await this.queue.remove(name);
      this.skipped.delete(name);
    }
  }

  private async corrupt(name: string, bytes: Buffer, err: MessageError): Promise<void> {
    await this.options.onCorrupt?.(name, bytes, err);
    await this.queue.remove(name);
    this.forget(name);
  }

  private async nextAhead(): Promise<Delivery | null | undefined> {
    const q = this.queue as DQS;
    for (;;) {
      // A listing fault waits for what was read ahead to be delivered; any other error is thrown at once.
      if (this.fillError !== undefined && !(this.fillError instanceof ListingFault && this.ahead.length > 0)) {
        const err = this.fillError;
        this.fillError = undefined;
        throw err;
      }
      // Double buffering: the next batch is read while this one is being sent.
      if (this.ahead.length <= this.batch && !this.exhausted) this.startFill();
      const a = this.ahead.shift();
      if (a === undefined) {
        if (this.filling !== undefined) {
          await this.filling;
          continue;
        }
        this.exhausted = false;
        const end = await this.endOfPass();
        if (end !== false) return end;
        continue;
      }
      this.sawElement = true;
      try {
        return { id: a.name, message: q.parseMessage(a.name, a.bytes) };
      } catch (err) {
        if (!(err instanceof MessageError) || this.options.onCorrupt === undefined) {
          await this.release(a.name);
          throw err;
        }
        await this.corrupt(a.name, a.bytes, err);
      }
    }
  }

  private startFill(): void {
    if (this.filling !== undefined) return;
    // Not while the listing waits for its next attempt; at that attempt, the last listing fault is forgotten.
    if (this.fault.failing && Date.now() < this.fault.retryAt) return;
    if (this.fillError instanceof ListingFault) this.fillError = undefined;
    this.filling = this.fill()
      .catch((err) => {
        this.fillError = err;
      })
      .finally(() => {
        this.filling = undefined;
      });
  }

  /** Locks and reads the next batch of names (journal first, then the locks), appending to `ahead`. */
  private async fill(): Promise<void> {
    const q = this.queue as DQS;
    const names: string[] = [];
    while (names.length < this.batch) {
      const r = await this.nextName();
      if (r.done) {
        this.iterator = undefined;
        this.exhausted = true;
        break;
      }
      if (!this.pending.has(r.value) && !this.skipped.has(r.value)) names.push(r.value);
    }
    if (names.length === 0) return;
    let candidates = names;
    if (this.journal !== undefined) {
      // As tryLock(): what someone else has locked is not recorded. RACE: a lock taken by another process
      // between this check and ours (a batch's round trip, about a millisecond) is recorded and withdrawn
      // when our attempt fails; only a crash of ours right in between makes our successor release it.
      candidates = await q.unlockedOf(names);
      this.journal.takenMany(candidates);
    }
    for (const n of candidates) this.pending.add(n);
    let results: (Buffer | null | Error)[];
    try {
      results = await q.lockGetMany(candidates);
    } catch (err) {
      // The helper thread is gone: whatever it locked is in the journal, and purged in the end otherwise.
      for (const n of candidates) this.pending.delete(n);
      throw err;
    }
    const dropped: string[] = [];
    const faults: [string, Error][] = [];
    let error: unknown;
    for (const [i, r] of results.entries()) {
      const name = candidates[i] as string;
      if (Buffer.isBuffer(r)) this.ahead.push({ name, bytes: r });
      else {
        this.pending.delete(name);
        dropped.push(name);
        if (elementFault(r)) faults.push([name, r]);
        else error ??= r ?? undefined;
      }
    }
    this.journal?.droppedMany(dropped);
    if (error !== undefined) throw error;
    for (const [name, err] of faults) await this.unreadable(name, err);
  }

  /**
   * Locks an element, recording it in the journal first: a lock written down only after it was
   * taken would be forgotten by a crash in between, and wait for the purge. An element already
   * locked by someone else is skipped before anything is recorded, so recovery can only release
   * a foreign lock if another process took it in the microseconds between that check and our
   * failed attempt, and we died right then.
   */
  private async tryLock(name: string): Promise<boolean> {
    if (this.journal === undefined) return this.queue.lock(name);
    const lockPath = this.queue instanceof DQS ? this.queue.getPath(name) : `${this.queue.getPath(name)}/locked`;
    if (fs.existsSync(lockPath)) return false;
    this.journal.taken(name);
    // RACE: another consumer may lock it after the check: lock() then fails and the entry is withdrawn.
    let locked = false;
    try {
      locked = await this.queue.lock(name);
    } finally {
      if (!locked) this.journal.dropped(name);
    }
    return locked;
  }

  private async rawBytes(name: string): Promise<Buffer> {
    if (this.queue instanceof DQS) return this.queue.get(name);
    // A normal queue's element is a directory: keep whichever field files can be read.
    const data = await this.queue.get(name).catch(() => ({}));
    return Buffer.from(JSON.stringify(data, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('base64') : v)));
  }

  private forget(name: string): void {
    this.pending.delete(name);
    this.journal?.dropped(name);
  }

  async ack(id: string): Promise<void> {
    if (!this.pending.has(id)) return;
    if (this.options.remove && this.batch > 0) return this.removeLater(id);
    if (this.options.remove) await this.queue.remove(id);
    else await this.queue.unlock(id, true);
    this.forget(id);
  }

  /** Queues a removal for the next batch; resolves once the element is gone. */
  private removeLater(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.removals.push({ name, resolve, reject });
      this.removing ??= this.removeAll().finally(() => {
        this.removing = undefined;
      });
    });
  }

  /** Removes the queued elements, batch after batch: what is acked while one batch is removed makes the next. */
  private async removeAll(): Promise<void> {
    const q = this.queue as DQS;
    // Let this turn's acks join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.removals.length > 0) {
      const batch = this.removals.splice(0, MAX_REMOVE_BATCH);
      let errors: (Error | undefined)[];
      try {
        errors = await q.removeMany(batch.map((r) => r.name));
      } catch (err) {
        errors = batch.map(() => err as Error);
      }
      const removed: string[] = [];
      for (const [i, r] of batch.entries()) {
        const err = errors[i];
        if (err === undefined) {
          this.pending.delete(r.name);
          removed.push(r.name);
        }
      }
      this.journal?.droppedMany(removed);
      // A failed removal rejects its ack; the element is still ours (release() unlocks it).
      for (const [i, r] of batch.entries()) {
        const err = errors[i];
        if (err === undefined) r.resolve();
        else r.reject(err);
      }
    }
  }

  async release(id: string): Promise<void> {
    if (!this.pending.has(id)) return;
    await this.queue.unlock(id, true);
    this.forget(id);
  }

  private async maybePurge(): Promise<void> {
    const every = (this.options.purgeInterval ?? 300) * 1000;
    if (Date.now() - this.lastPurge < every) return;
    this.lastPurge = Date.now();
    // Housekeeping must not end the transfer: a queue the purge cannot list will fail the next pass on its own.
    let outcome: PurgeOutcome;
    try {
      outcome = { result: await this.queue.purge() };
    } catch (err) {
      outcome = { error: err instanceof Error ? err : new Error(String(err)) };
    }
    this.options.onPurge?.(outcome);
  }

  async close(): Promise<void> {
    await this.filling;
    this.fillError = undefined;
    while (this.removing !== undefined) await this.removing;
    // What was read ahead and never delivered goes back, as what was delivered and not acked.
    for (const a of this.ahead.splice(0)) await this.release(a.name);
    for (const id of [...this.pending]) await this.release(id);
    await this.iterator?.return?.();
    this.iterator = undefined;
    this.exhausted = false;
    this.journal?.close();
  }
}

export interface QueueOutgoingOptions {
  /**
   * Milliseconds to gather messages into one durable batch (group commit) when the caller does not say it pauses.
   * Default 2. runPipeline calls flush() whenever it is about to wait, so its batches never wait for this timer.
   */
  groupCommitMs?: number;
  /** Most messages per batch. Default 1000. */
  maxBatch?: number;
  /**
   * DQS only: write each batch on a helper thread (QueueSimple.addBatch), so that the event loop
   * receives the next messages meanwhile. Default false (addMany on the event loop): with the broker
   * on the same two CPUs the benchmark could not tell the two apart (docs/benchmarks.md, stomp).
   */
  offload?: boolean;
  /**
   * Milliseconds between attempts while the spool cannot be written: full (ENOSPC, EDQUOT) or unusable (EACCES,
   * EPERM, EROFS, EIO). The batch waits, unacked, and is written once the error has cleared (the delay, with
   * jitter, doubles up to `maxDelay`). Default {initialDelay: 100, maxDelay: 5000}.
   */
  fullRetry?: { initialDelay?: number; maxDelay?: number };
  /** Told when writes start failing (full or unusable), fail again, and succeed again: for the command's log. */
  onEvent?: (event: QueueOutgoingEvent) => void;
  /** Aborted: a batch waiting for the spool fails at once with its last error (the caller gave up on the spool). */
  giveUp?: AbortSignal;
}

export type QueueOutgoingEvent = SpoolFaultEvent;

/**
 * A directory queue as the outgoing side. A message is safe once its element
 * is durable: sends arriving together are written as one batch and made
 * durable with one sync (group commit), then all of them resolve.
 */
export class QueueOutgoing implements Outgoing {
  readonly description: string;
  private batch: { message: Message; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Aborted by close(): a batch waiting for space then fails (the pipeline releases its messages). */
  private readonly closing = new AbortController();
  /** close() or the caller's giveUp: made once (AbortSignal.any per batch would add a listener per batch). */
  private readonly stopWaiting: AbortSignal;

  constructor(
    private readonly queue: MessageSpool | MessageQueueNull,
    private readonly options: QueueOutgoingOptions = {},
  ) {
    this.description = `queue ${queue.path}`;
    const giveUp = options.giveUp;
    this.stopWaiting = giveUp === undefined ? this.closing.signal : AbortSignal.any([this.closing.signal, giveUp]);
  }

  async open(): Promise<void> {}

  send(message: Message): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ message, resolve, reject });
      if (this.batch.length >= (this.options.maxBatch ?? 1000)) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.groupCommitMs ?? 2);
    });
  }

  /**
   * Writes what was gathered now (the pipeline calls it whenever it is about to wait): a batch then never waits for
   * the group-commit timer, which only serves callers that send without saying when they pause.
   */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.writeWhenRoom(batch.map((b) => b.message));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    });
  }

  /**
   * Writes a batch, waiting while the spool cannot be written (full, or a persistent error: permissions, a
   * read-only or failing file system): a spool that cannot take messages is a consumer away, as a broker that is
   * down is, so the messages stay unacked upstream (the window stops the intake) instead of being released and
   * fetched again in a hot loop. A batch half written when the error came is written again whole: at least once.
   */
  private async writeWhenRoom(messages: Message[]): Promise<void> {
    const fault = new FaultState(this.options.fullRetry, this.options.onEvent);
    const stop = this.stopWaiting;
    for (;;) {
      try {
        await this.write(messages);
        fault.succeeded();
        return;
      } catch (err) {
        const type = spoolFault(err);
        if (type === undefined || stop.aborted) throw err;
        await abortableSleep(fault.failed(type, err as Error), stop);
      }
    }
  }

  private async write(messages: Message[]): Promise<void> {
    const q = this.queue;
    if (q instanceof DQS) {
      const items = messages.map((m) => m.serialize(q.compression === undefined ? {} : { compression: q.compression }));
      if (this.options.offload) await q.addBatch(items);
      else await q.addMany(items);
    } else {
      for (const m of messages) await q.addMessage(m);
    }
  }

  async close(): Promise<void> {
    this.flush();
    // Only a batch waiting for space is affected: one being written finishes.
    this.closing.abort();
    await this.flushing;
  }
}
