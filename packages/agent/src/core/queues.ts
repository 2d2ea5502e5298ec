import * as fs from 'node:fs';
import { type DQN, DQS, type Message, MessageError, type MessageQueueNull } from '@msgbricks/message';
import { LockJournal } from './journal';
import type { Delivery, Incoming, Outgoing } from './modules';

export type MessageSpool = DQS | DQN;

export interface QueueIncomingOptions {
  /** Remove what was transferred (otherwise it is unlocked and stays). */
  remove?: boolean;
  /** Start over at the end of the queue instead of finishing (daemon mode). */
  loop?: boolean;
  /** Where this instance records its locks (see LockJournal); none: stale locks wait for the purge. */
  journal?: string;
  /** Seconds between purges of the queue (stale temporaries and locks), as stompclt's 300. */
  purgeInterval?: number;
  /** Takes an element that is not a valid message; it is removed from the queue once this resolves. */
  onCorrupt?: (name: string, bytes: Buffer, error: MessageError) => Promise<void>;
}

/** A directory queue as the incoming side: lock, read; ack removes (or unlocks), release unlocks. */
export class QueueIncoming implements Incoming {
  readonly description: string;
  private iterator: AsyncIterator<string> | undefined;
  private readonly pending = new Set<string>();
  private journal: LockJournal | undefined;
  private lastPurge = 0;
  private sawElement = false;

  constructor(
    private readonly queue: MessageSpool,
    private readonly options: QueueIncomingOptions = {},
  ) {
    this.description = `queue ${queue.path}`;
  }

  async open(): Promise<void> {
    if (this.options.journal !== undefined) {
      this.journal = new LockJournal(this.options.journal);
      // What the previous instance of this agent had locked when it died is released at once.
      for (const name of this.journal.recover()) await this.queue.unlock(name, true).catch(() => false);
    }
    this.lastPurge = Date.now();
  }

  async next(): Promise<Delivery | null | undefined> {
    for (;;) {
      if (this.iterator === undefined) this.iterator = this.queue[Symbol.asyncIterator]();
      const r = await this.iterator.next();
      if (r.done) {
        this.iterator = undefined;
        await this.maybePurge();
        if (!this.options.loop) return null;
        const found = this.sawElement;
        this.sawElement = false;
        // An empty pass: let the pipeline idle before the next one.
        if (!found) return undefined;
        continue;
      }
      const name = r.value;
      if (this.pending.has(name) || !(await this.tryLock(name))) continue;
      this.sawElement = true;
      this.pending.add(name);
      try {
        return { id: name, message: await this.queue.getMessage(name) };
      } catch (err) {
        if (!(err instanceof MessageError) || this.options.onCorrupt === undefined) {
          await this.release(name);
          throw err;
        }
        await this.options.onCorrupt(name, await this.rawBytes(name), err);
        await this.queue.remove(name);
        this.forget(name);
      }
    }
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
    if (await this.queue.lock(name)) return true;
    this.journal.dropped(name);
    return false;
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
    if (this.options.remove) await this.queue.remove(id);
    else await this.queue.unlock(id, true);
    this.forget(id);
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
    await this.queue.purge();
  }

  async close(): Promise<void> {
    for (const id of [...this.pending]) await this.release(id);
    await this.iterator?.return?.();
    this.iterator = undefined;
    this.journal?.close();
  }
}

export interface QueueOutgoingOptions {
  /** Milliseconds to gather messages into one durable batch (group commit). Default 2. */
  groupCommitMs?: number;
  /** Most messages per batch. Default 1000. */
  maxBatch?: number;
}

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

  constructor(
    private readonly queue: MessageSpool | MessageQueueNull,
    private readonly options: QueueOutgoingOptions = {},
  ) {
    this.description = `queue ${queue.path}`;
  }

  async open(): Promise<void> {}

  send(message: Message): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ message, resolve, reject });
      if (this.batch.length >= (this.options.maxBatch ?? 1000)) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.groupCommitMs ?? 2);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.write(batch.map((b) => b.message));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    });
  }

  private async write(messages: Message[]): Promise<void> {
    const q = this.queue;
    if (q instanceof DQS) {
      await q.addMany(messages.map((m) => m.serialize(q.compression === undefined ? {} : { compression: q.compression })));
    } else {
      for (const m of messages) await q.addMessage(m);
    }
  }

  async close(): Promise<void> {
    this.flush();
    await this.flushing;
  }
}
