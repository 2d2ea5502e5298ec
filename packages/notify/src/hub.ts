import type { CachedNotification } from './cache';

/** Subscribes to every repository (the web page's feed). */
export const EVERY_REPOSITORY = '*';

/**
 * One subscriber's connection (an SSE response, a WebSocket). The hub writes to it while its buffer holds less than
 * the bound; past it, the subscriber is congested and only the latest notification per repository is kept.
 */
export interface Sink {
  /** Bytes written and not yet taken by the peer. */
  buffered(): number;
  write(n: CachedNotification): void;
  /** Ends the connection of a subscriber that stayed congested too long. */
  kill(): void;
}

export interface HubOptions {
  /** The bound of a subscriber's buffer, in bytes (default 256 KiB). */
  maxBufferedBytes?: number;
  /** How long a subscriber may stay congested before it is disconnected (default 30 s). */
  stallTimeoutMs?: number;
  /** How often congested subscribers are looked at (default 100 ms). */
  checkIntervalMs?: number;
}

export interface HubStats {
  deliveries: number;
  /** Notifications a congested subscriber never got because a newer one of the same repository replaced them. */
  coalesced: number;
  /** Subscribers disconnected for staying congested. */
  dropped: number;
}

interface Congestion {
  since: number;
  readonly pending: Map<string, CachedNotification>;
}

/**
 * The fan-out. Publishing never waits on a subscriber (the cvmfs gateway writes into full channels under a lock, so
 * one stalled subscriber blocks every publisher): each write goes to the connection's own buffer, and a subscriber
 * that falls behind is coalesced to the latest revision per repository (older revisions are superseded anyway),
 * then disconnected if it does not catch up.
 */
export class Hub {
  private readonly byRepository = new Map<string, Set<Sink>>();
  private readonly congested = new Map<Sink, Congestion>();
  private readonly maxBuffered: number;
  private readonly stallTimeoutMs: number;
  private readonly timer: NodeJS.Timeout;
  readonly stats: HubStats = { deliveries: 0, coalesced: 0, dropped: 0 };
  private count = 0;

  constructor(options: HubOptions = {}) {
    this.maxBuffered = options.maxBufferedBytes ?? 256 * 1024;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.timer = setInterval(() => this.check(), options.checkIntervalMs ?? 100);
    this.timer.unref();
  }

  /** Subscribers now (one per subscription: a WebSocket with two repositories counts twice). */
  get subscribers(): number {
    return this.count;
  }

  /** Every repository with a subscriber. */
  repositories(): string[] {
    return [...this.byRepository.keys()];
  }

  add(repository: string, sink: Sink): void {
    let set = this.byRepository.get(repository);
    if (set === undefined) {
      set = new Set();
      this.byRepository.set(repository, set);
    }
    if (!set.has(sink)) {
      set.add(sink);
      this.count++;
    }
  }

  remove(repository: string, sink: Sink): void {
    const set = this.byRepository.get(repository);
    if (set?.delete(sink)) {
      this.count--;
      if (set.size === 0) this.byRepository.delete(repository);
    }
    this.congested.delete(sink);
  }

  /** Sends `n` to one subscriber, through its congestion state (also used for the first, cached, notification). */
  deliverTo(sink: Sink, n: CachedNotification): void {
    const c = this.congested.get(sink);
    if (c !== undefined) {
      if (c.pending.has(n.repository)) this.stats.coalesced++;
      c.pending.set(n.repository, n);
      return;
    }
    if (sink.buffered() > this.maxBuffered) {
      this.congested.set(sink, { since: Date.now(), pending: new Map([[n.repository, n]]) });
      return;
    }
    sink.write(n);
    this.stats.deliveries++;
    // Over the bound now: watched from here on, so that one that never reads again is found even if nothing more
    // is published.
    if (sink.buffered() > this.maxBuffered) this.congested.set(sink, { since: Date.now(), pending: new Map() });
  }

  /** Fans `n` out to the repository's subscribers and the feed's. */
  publish(n: CachedNotification): void {
    for (const key of [n.repository, EVERY_REPOSITORY]) {
      const set = this.byRepository.get(key);
      if (set === undefined) continue;
      for (const sink of set) this.deliverTo(sink, n);
    }
  }

  private check(): void {
    const now = Date.now();
    for (const [sink, c] of this.congested) {
      if (sink.buffered() <= this.maxBuffered) {
        this.congested.delete(sink);
        for (const n of c.pending.values()) this.deliverTo(sink, n);
      } else if (now - c.since > this.stallTimeoutMs) {
        this.congested.delete(sink);
        this.stats.dropped++;
        sink.kill();
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
