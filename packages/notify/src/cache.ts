import * as fs from 'node:fs/promises';
import { QueueSimple } from '@msgbricks/dirq';
import { errnoOf, errorOf } from '@msgbricks/errors';
import { CacheError } from './errors';
import { type Notification, parseNotification } from './message';

/** A repository's last notification, with the frames every subscriber gets, made once. */
export interface CachedNotification extends Notification {
  /** The dirq element holding it. */
  readonly element: string;
  /** When this gateway received it (ms since the epoch). */
  readonly receivedAt: number;
}

/** What put() did with a notification. */
export type PutOutcome = 'stored' | 'duplicate' | 'stale';

/**
 * The last notification per repository, kept in a python-dirq compatible QueueSimple spool (one element per
 * repository: the published JSON as is), so it survives a restart, unlike the cvmfs gateway's map since cvmfs #2846.
 */
export class LastValueCache {
  private readonly last = new Map<string, CachedNotification>();
  /** Writes one at a time: an older put never removes a newer element. */
  private chain: Promise<unknown> = Promise.resolve();
  /** Elements that could not be read at open, left in place (not counted as repositories). */
  unreadable = 0;

  /** Without a spool (inMemory): a cluster worker's copy of its primary's cache, which keeps the spool. */
  private constructor(private readonly queue: QueueSimple | undefined) {}

  /** A cache that is not persisted: what a gateway worker holds, fed by the primary (Relay) that persists. */
  static inMemory(): LastValueCache {
    return new LastValueCache(undefined);
  }

  /**
   * Opens (creating) the spool at `dir` and loads it: the highest revision of each repository wins, and the
   * elements it supersedes (left by a crash between add and remove) are removed.
   */
  static async open(dir: string): Promise<LastValueCache> {
    let queue: QueueSimple;
    try {
      queue = new QueueSimple(dir);
    } catch (err) {
      throw new CacheError(`cannot open the last-value cache ${dir}: ${errorOf(err).message}`, { cause: err });
    }
    const cache = new LastValueCache(queue);
    const superseded: string[] = [];
    try {
      for await (const element of queue) {
        let data: Buffer;
        try {
          // Read in place: get() reads through a lock, and locking every element at start-up would be two more
          // system calls each for nothing (only this process writes the spool).
          data = await fs.readFile(`${queue.path}/${element}`);
        } catch (err) {
          // RACE: removed since the listing (an operator cleaning up): nothing to load.
          if (errnoOf(err) === 'ENOENT') continue;
          throw err;
        }
        let n: Notification;
        try {
          n = parseNotification(data);
        } catch {
          // Not a notification (written by someone else): left alone, not loaded.
          cache.unreadable++;
          continue;
        }
        const old = cache.last.get(n.repository);
        if (old !== undefined && old.revision >= n.revision) {
          superseded.push(element);
          continue;
        }
        if (old !== undefined) superseded.push(old.element);
        cache.last.set(n.repository, { ...n, element, receivedAt: Date.now() });
      }
      for (const element of superseded) await cache.removeElement(element);
    } catch (err) {
      if (err instanceof CacheError) throw err;
      throw new CacheError(`cannot load the last-value cache ${dir}: ${errorOf(err).message}`, { cause: err });
    }
    return cache;
  }

  get(repository: string): CachedNotification | undefined {
    return this.last.get(repository);
  }

  /** Every repository's last notification. */
  entries(): CachedNotification[] {
    return [...this.last.values()];
  }

  get size(): number {
    return this.last.size;
  }

  /**
   * Stores `n` when its revision is newer than the cached one (`stored`, resolved once it is on disk); `duplicate`
   * for the same revision again (an identical republish, or another node's copy), `stale` for an older one.
   */
  put(n: Notification): Promise<{ outcome: PutOutcome; entry: CachedNotification | undefined }> {
    const next = this.chain.then(() => this.putNow(n));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async putNow(n: Notification): Promise<{ outcome: PutOutcome; entry: CachedNotification | undefined }> {
    const old = this.last.get(n.repository);
    if (old !== undefined && old.revision === n.revision) return { outcome: 'duplicate', entry: undefined };
    if (old !== undefined && old.revision > n.revision) return { outcome: 'stale', entry: undefined };
    let element = '';
    const queue = this.queue;
    if (queue !== undefined) {
      try {
        element = await queue.add(n.body);
      } catch (err) {
        throw new CacheError(`cannot add to the last-value cache ${queue.path}: ${errorOf(err).message}`, { cause: err });
      }
    }
    const entry: CachedNotification = { ...n, element, receivedAt: Date.now() };
    this.last.set(n.repository, entry);
    // The new element is on disk before the old one goes: a crash in between leaves both, and open() keeps the newer.
    if (old !== undefined) await this.removeElement(old.element);
    return { outcome: 'stored', entry };
  }

  private async removeElement(element: string): Promise<void> {
    const queue = this.queue;
    if (queue === undefined) return;
    try {
      if (await queue.lock(element, true)) await queue.remove(element);
    } catch (err) {
      throw new CacheError(`cannot remove ${element} from the last-value cache ${queue.path}: ${errorOf(err).message}`, {
        cause: err,
      });
    }
  }
}

/** What storing a message from the broker came to, for the gateway's and the relay's events. */
export type ReceivedEvent =
  | { type: 'received'; repository: string; revision: number; outcome: string }
  | { type: 'invalid-from-broker'; error: Error };

/**
 * A message from the broker into the cache, as a single gateway and the primary of `workers: N` both take it:
 * parsed, stored, counted in `counts` by outcome and reported. Resolves to the entry to fan out, or undefined when
 * nothing is new (an older or the same revision, or a body that is not a notification: another publisher on the
 * exchange, acknowledged and dropped).
 */
export async function storeReceived(
  cache: LastValueCache,
  body: Buffer,
  counts: Record<string, number>,
  emit: (event: ReceivedEvent) => void,
): Promise<CachedNotification | undefined> {
  let n: Notification;
  try {
    n = parseNotification(body);
  } catch (err) {
    counts.invalid = (counts.invalid ?? 0) + 1;
    emit({ type: 'invalid-from-broker', error: errorOf(err) });
    return undefined;
  }
  const { outcome, entry } = await cache.put(n);
  counts[outcome] = (counts[outcome] ?? 0) + 1;
  emit({ type: 'received', repository: n.repository, revision: n.revision, outcome });
  return entry;
}
