/**
 * Finding work: passes over a DQS spool's directories (python-dirq's order) that also see which elements are locked
 * and which have an attempt record, from the one readdir per directory the pass makes anyway; and the wake-up
 * hints (file-system events) used only while the runner is idle.
 */
import * as fs from 'node:fs';
import { FileSystemError, NAME_RE } from '@msgbricks/dirq';
import { ATT_SUFFIX, type MessageSpool } from './attempts';

const DIR_RE = /^[0-9a-f]{8}$/;
const ELT_RE = /^[0-9a-f]{14}$/;
const LOCK_SUFFIX = '.lck';

/** One element found by a pass: its name and whether an attempt record sits beside it. */
export interface Found {
  name: string;
  hasRecord: boolean;
}

async function readdir(path: string): Promise<string[]> {
  try {
    return await fs.promises.readdir(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // RACE: an intermediate directory removed by a purge since it was listed; a stray file is not ours.
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new FileSystemError('opendir', path, err);
  }
}

/**
 * A DQS pass: intermediate directories sorted, one listed at a time, its unlocked elements sorted. Records whose
 * element is gone (taken by a consumer that knows nothing of them) are reported to `onOrphan`.
 */
export class SimpleScan {
  private dirs: string[] | undefined;
  private dirIndex = 0;
  private found: Found[] = [];
  private foundIndex = 0;

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
    while (this.foundIndex >= this.found.length) {
      if (this.dirIndex >= this.dirs.length) {
        this.dirs = undefined;
        this.found = [];
        this.foundIndex = 0;
        return [];
      }
      this.found = await this.list(this.dirs[this.dirIndex++] as string);
      this.foundIndex = 0;
    }
    const out = this.found.slice(this.foundIndex, this.foundIndex + max);
    this.foundIndex += out.length;
    return out;
  }

  private async list(dir: string): Promise<Found[]> {
    const entries = await readdir(`${this.path}/${dir}`);
    const elements: string[] = [];
    const locked = new Set<string>();
    const records = new Set<string>();
    for (const e of entries) {
      if (e.length === 14) {
        if (ELT_RE.test(e)) elements.push(e);
      } else if (e.endsWith(LOCK_SUFFIX)) locked.add(e.slice(0, -LOCK_SUFFIX.length));
      else if (e.endsWith(ATT_SUFFIX)) records.add(e.slice(0, -ATT_SUFFIX.length));
    }
    elements.sort();
    const out: Found[] = [];
    for (const e of elements) {
      const hasRecord = records.delete(e);
      if (!locked.has(e)) out.push({ name: `${dir}/${e}`, hasRecord });
    }
    // N.B. readdir returns every entry that exists for the whole listing: a record listed without its element had
    // lost it before the listing (element names are never reused), so the record is nobody's.
    for (const r of records) if (NAME_RE.test(`${dir}/${r}`)) this.onOrphan(`${dir}/${r}`);
    return out;
  }

  /** Forgets the current pass (the next call starts a new one). */
  restart(): void {
    this.dirs = undefined;
    this.found = [];
    this.foundIndex = 0;
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
