/**
 * Finding work: passes over a DQS spool's directories (python-dirq's order) that also see which elements are locked
 * and which have an attempt record, from the one readdir per directory the pass makes anyway; and the wake-up
 * hints (file-system events) used only while the runner is idle.
 */
import * as fs from 'node:fs';
import { FileSystemError } from '@msgbricks/dirq';
import { ATT_SUFFIX, type MessageSpool } from './attempts';

const DIR_RE = /^[0-9a-f]{8}$/;
const ELT_RE = /^[0-9a-f]{14}$/;
const LOCK_SUFFIX = '.lck';

/** One element found by a pass: its name and whether an attempt record sits beside it. */
export interface Found {
  name: string;
  hasRecord: boolean;
}

function sortedHas(a: BigUint64Array, v: bigint): boolean {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = a[mid] as bigint;
    if (m === v) return true;
    if (m < v) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/**
 * A DQS pass: intermediate directories sorted, one listed at a time, its unlocked elements sorted. Records whose
 * element is gone (taken by a consumer that knows nothing of them) are reported to `onOrphan`.
 */
export class SimpleScan {
  private dirs: string[] | undefined;
  private dirIndex = 0;
  private dir = '';
  /** The current directory's unlocked elements, 8 bytes each (a name string each would outlive many collections). */
  private elements: BigUint64Array = new BigUint64Array(0);
  private index = 0;
  /** Of those, the ones with an attempt record. */
  private records = new Set<bigint>();

  constructor(
    private readonly path: string,
    private readonly onOrphan: (name: string) => void,
  ) {}

  /** Up to `max` more elements of this pass; an empty array ends the pass (the next call starts another). */
  async next(max: number): Promise<Found[]> {
    if (this.dirs === undefined) {
      const top = await fs.promises.readdir(this.path).catch((err: unknown) => {
        throw new FileSystemError('opendir', this.path, err);
      });
      this.dirs = top.filter((d) => DIR_RE.test(d)).sort();
      this.dirIndex = 0;
    }
    while (this.index >= this.elements.length) {
      if (this.dirIndex >= this.dirs.length) {
        this.restart();
        return [];
      }
      this.dir = this.dirs[this.dirIndex++] as string;
      this.list(this.dir);
    }
    const end = Math.min(this.elements.length, this.index + max);
    const out: Found[] = [];
    for (; this.index < end; this.index++) {
      const v = this.elements[this.index] as bigint;
      out.push({ name: `${this.dir}/${v.toString(16).padStart(14, '0')}`, hasRecord: this.records.has(v) });
    }
    return out;
  }

  /**
   * Lists one directory, entry by entry, keeping only numbers: a big directory's names would otherwise all live
   * until the pass is over (and make V8 grow its young generation for good). Synchronous, as the queues' default I/O.
   */
  private list(dir: string): void {
    const path = `${this.path}/${dir}`;
    let d: fs.Dir;
    try {
      d = fs.opendirSync(path, { bufferSize: 256 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // RACE: an intermediate directory removed by a purge since it was listed; a stray file is not ours.
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        this.elements = new BigUint64Array(0);
        this.index = 0;
        return;
      }
      throw new FileSystemError('opendir', path, err);
    }
    let buf = new BigUint64Array(256);
    let n = 0;
    const locked = new Set<bigint>();
    const records = new Set<bigint>();
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        const name = e.name;
        if (name.length === 14) {
          if (!ELT_RE.test(name)) continue;
          if (n === buf.length) {
            const bigger = new BigUint64Array(n * 2);
            bigger.set(buf);
            buf = bigger;
          }
          buf[n++] = BigInt(`0x${name}`);
        } else if (name.length === 18 && name.endsWith(LOCK_SUFFIX) && ELT_RE.test(name.slice(0, 14)))
          locked.add(BigInt(`0x${name.slice(0, 14)}`));
        else if (name.length === 18 && name.endsWith(ATT_SUFFIX) && ELT_RE.test(name.slice(0, 14)))
          records.add(BigInt(`0x${name.slice(0, 14)}`));
      }
    } catch (err) {
      throw new FileSystemError('readdir', path, err);
    } finally {
      d.closeSync();
    }
    const all = buf.subarray(0, n).sort();
    this.records = new Set();
    for (const r of records) {
      // N.B. readdir returns every entry that exists for the whole listing: a record listed without its element had
      // lost it before the listing (element names are never reused), so the record is nobody's.
      if (!sortedHas(all, r)) this.onOrphan(`${dir}/${r.toString(16).padStart(14, '0')}`);
      else if (!locked.has(r)) this.records.add(r);
    }
    this.elements = locked.size > 0 ? all.filter((v) => !locked.has(v)) : all;
    this.index = 0;
  }

  /** Forgets the current pass (the next call starts a new one). */
  restart(): void {
    this.dirs = undefined;
    this.elements = new BigUint64Array(0);
    this.index = 0;
    this.records = new Set();
  }
}

/**
 * Wake-up hints while idle: fs.watch on the spool's top directory and its intermediate directories (new elements,
 * unlocks, new directories). Only a hint: the caller rescans after arming, and on a timer anyway, so an event
 * missed (inotify overflow, a network file system) delays work, never loses it. Not used while busy: each element
 * handled would cost several events.
 */
export class WakeHints {
  private readonly watchers: fs.FSWatcher[] = [];
  private wake: (() => void) | undefined;
  private fired = false;

  constructor(private readonly queue: MessageSpool) {}

  /** Starts watching; `onHint` is called (once) at the first event. */
  async arm(onHint: () => void): Promise<void> {
    this.fired = false;
    this.wake = onHint;
    const hint = (): void => {
      if (this.fired) return;
      this.fired = true;
      this.wake?.();
    };
    const watch = (p: string): void => {
      try {
        const w = fs.watch(p, { persistent: false }, hint);
        w.on('error', hint);
        this.watchers.push(w);
      } catch {
        // RACE: the directory went away (a purge): the timed rescan covers it.
      }
    };
    watch(this.queue.path);
    const top = await fs.promises.readdir(this.queue.path).catch(() => [] as string[]);
    for (const d of top
      .filter((x) => DIR_RE.test(x))
      .sort()
      .slice(-64))
      watch(`${this.queue.path}/${d}`);
  }

  disarm(): void {
    this.wake = undefined;
    for (const w of this.watchers.splice(0)) w.close();
  }
}
