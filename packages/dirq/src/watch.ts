import * as fs from 'node:fs';
import { join } from 'node:path';
import { DIR_RE, ELT_RE, wallClockMicros } from './names';

export interface WatchOptions {
  /** Milliseconds between full rescans, the source of truth (events are only hints). Default 2000. */
  rescanInterval?: number;
  /**
   * Also yield the elements already in the queue when the watch starts. Default false: only the elements named at
   * or after the watch() call (an element's name is its creation time), including those that land while the first
   * scan is still listing.
   */
  fromStart?: boolean;
  /** Stops the watch; the iterator then ends. */
  signal?: AbortSignal;
  /** Keep the process alive while the watch is open (as fs.watch and chokidar do). Default true. */
  persistent?: boolean;
}

/** What the watcher needs from a queue. */
export interface Watchable {
  readonly path: string;
  listDirsForWatch(): Promise<string[]>;
  listForWatch(dir: string): Promise<string[]>;
}

const HINT_DELAY_MS = 2;

/** The creation time an element name carries (`SSSSSSSSMMMMMR`: seconds and microseconds in hex), in microseconds. */
function nameMicros(element: string): number {
  return Number.parseInt(element.slice(0, 8), 16) * 1e6 + Number.parseInt(element.slice(8, 13), 16);
}

/**
 * Watches a queue: fs.watch on the top directory and on each intermediate
 * directory wakes a scan of what changed; a periodic full rescan catches
 * whatever the events missed (inotify overflow, NFS, watch limits). It
 * remembers the names present in each directory, so memory follows the
 * queue's current size, not its history.
 */
class QueueWatcher implements AsyncIterableIterator<string> {
  private readonly seen = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private readonly dirty = new Set<string>();
  private readonly pending: string[] = [];
  private waiter: { resolve: (r: IteratorResult<string>) => void; reject: (e: unknown) => void } | undefined;
  private failure: unknown;
  private closed = false;
  private fullScanDue = true;
  private scanning: Promise<void> | undefined;
  private hintTimer: NodeJS.Timeout | undefined;
  private readonly rescanTimer: NodeJS.Timeout;
  private readonly onAbort = () => void this.return();
  /**
   * When watch() was called, in the microseconds element names use (the names' own clock, so that an element named
   * just before, in the same millisecond, is not taken for a new one). The first
   * scan of a watch without fromStart yields only names from then on: taking every name it lists as "already there"
   * swallowed elements added between a caller's last pass and that scan.
   */
  private readonly startMicros = wallClockMicros();

  constructor(
    private readonly queue: Watchable,
    private readonly options: WatchOptions,
  ) {
    const interval = options.rescanInterval ?? 2000;
    this.rescanTimer = setInterval(() => {
      this.fullScanDue = true;
      this.kick();
    }, interval);
    if (options.persistent === false) this.rescanTimer.unref();
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.closed = true;
    this.watchDir('');
    this.kick(options.fromStart !== true);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<string> {
    return this;
  }

  next(): Promise<IteratorResult<string>> {
    const name = this.pending.shift();
    if (name !== undefined) return Promise.resolve({ value: name, done: false });
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      void this.return();
      return Promise.reject(err);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async return(): Promise<IteratorResult<string>> {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.rescanTimer);
      if (this.hintTimer) clearTimeout(this.hintTimer);
      for (const w of this.watchers.values()) w.close();
      this.watchers.clear();
      this.options.signal?.removeEventListener('abort', this.onAbort);
    }
    this.pending.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve({ value: undefined, done: true });
    return { value: undefined, done: true };
  }

  private watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    let w: fs.FSWatcher;
    try {
      w = fs.watch(join(this.queue.path, dir), { persistent: false /* the rescan timer holds the process */ }, (_event, file) =>
        this.hint(dir, file),
      );
    } catch {
      // Watch limit reached, or the directory vanished: the periodic rescan covers it.
      return;
    }
    w.on('error', () => {
      w.close();
      this.watchers.delete(dir);
    });
    this.watchers.set(dir, w);
  }

  private hint(dir: string, file: string | Buffer | null): void {
    const f = file === null ? null : String(file);
    if (dir === '') {
      if (f === null) this.fullScanDue = true;
      else if (DIR_RE.test(f)) this.dirty.add(f);
      else return;
    } else if (f === null || ELT_RE.test(f)) {
      this.dirty.add(dir);
    } else {
      return;
    }
    if (this.hintTimer === undefined) {
      this.hintTimer = setTimeout(() => {
        this.hintTimer = undefined;
        this.kick();
      }, HINT_DELAY_MS);
    }
  }

  /** Runs a scan now, or right after the one in progress. */
  private kick(first = false): void {
    if (this.closed) return;
    if (this.scanning) {
      void this.scanning.then(() => this.kick());
      return;
    }
    this.scanning = this.scan(first)
      .catch((err) => {
        this.failure = err;
      })
      .finally(() => {
        this.scanning = undefined;
        this.deliver();
      });
  }

  private async scan(first: boolean): Promise<void> {
    const full = this.fullScanDue;
    this.fullScanDue = false;
    const dirty = new Set(this.dirty);
    this.dirty.clear();
    if (!full && dirty.size === 0) return;
    const dirs = await this.queue.listDirsForWatch();
    const present = new Set(dirs);
    for (const d of [...this.seen.keys()]) {
      if (!present.has(d)) {
        this.seen.delete(d);
        this.watchers.get(d)?.close();
        this.watchers.delete(d);
      }
    }
    const found: string[] = [];
    for (const dir of dirs) {
      const known = this.seen.get(dir);
      if (!full && known !== undefined && !dirty.has(dir)) continue;
      this.watchDir(dir);
      const names = await this.queue.listForWatch(dir);
      for (const n of names) {
        if (known?.has(n)) continue;
        // RACE: an add that made its name before watch() and lands during this first scan is not yielded; it was
        // in flight before the watch began, so the caller's own pass (or fromStart) is what covers it.
        if (first && nameMicros(n) < this.startMicros) continue;
        found.push(`${dir}/${n}`);
      }
      this.seen.set(dir, new Set(names));
    }
    this.pending.push(...found.sort());
  }

  private deliver(): void {
    if (this.waiter === undefined) return;
    if (this.pending.length === 0 && this.failure === undefined) return;
    const w = this.waiter;
    this.waiter = undefined;
    this.next().then(w.resolve, w.reject);
  }
}

export function watchQueue(queue: Watchable, options: WatchOptions): AsyncIterableIterator<string> {
  return new QueueWatcher(queue, options);
}
