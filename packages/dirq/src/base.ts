import * as fs from 'node:fs';
import { join } from 'node:path';
import { FileSystemError, InvalidOptionError } from './errors';
import { asyncIo, type Io, syncIo } from './io';
import { bigToElt, checkName, DIR_RE, ELT_RE, eltToBig, NameGenerator } from './names';
import { type WatchOptions, watchQueue } from './watch';

export interface BaseOptions {
  /** Applied to created files (0o666 & ~umask) and directories (0o777 & ~umask); the process umask is never changed. */
  umask?: number;
  /** Last hex digit of every element name made by this object; random by default, as in python-dirq. */
  rndhex?: number;
  /** Make every addition durable (file and directory fsync'd) before it resolves. */
  fsync?: boolean;
  /** `sync` (default, fastest on local disks) or `async` (never blocks the event loop; for network file systems). */
  io?: 'sync' | 'async';
}

export interface PurgeOptions {
  /** Seconds after which a temporary file or directory is removed; 0 disables. Default 300. */
  maxtemp?: number;
  /** Seconds after which a lock is broken; 0 disables. Default 600. */
  maxlock?: number;
}

export interface PurgeResult {
  removedTemporary: number;
  brokenLocks: number;
  removedDirectories: number;
  /**
   * What purge found and left in place, and why: entries that are not the queue's own (a file where a directory
   * should be, a name that is no element), and entries a system call failed on. Purge goes on past each of them;
   * only a queue directory it cannot list at all makes it throw. The caller decides how to report them.
   */
  warnings: PurgeWarning[];
}

/** One entry purge left in place. */
export interface PurgeWarning {
  path: string;
  /** Why, in words ("not a directory: left in place", or the failed call's message). */
  reason: string;
  /** The errno when a system call failed on it. */
  errno?: string;
}

/** Collects a purge's warnings, one per path (a stray entry is met by several of its passes). */
export class PurgeWarnings {
  readonly list: PurgeWarning[] = [];
  private readonly seen = new Set<string>();

  /** A foreign entry, left in place. */
  left(path: string, what: string): void {
    if (this.seen.has(path)) return;
    this.seen.add(path);
    this.list.push({ path, reason: `${what}: left in place` });
  }

  /** A system call failed on the entry: it is skipped. Anything but a FileSystemError is a bug, and thrown. */
  failed(path: string, err: unknown): void {
    if (!(err instanceof FileSystemError)) throw err;
    if (this.seen.has(path)) return;
    this.seen.add(path);
    this.list.push({ path, reason: err.message, errno: err.errno });
  }

  /** Whether the path was reported already (its other checks are then skipped). */
  has(path: string): boolean {
    return this.seen.has(path);
  }
}

let processUmask: number | undefined;

/** The process umask, read without changing it (process.umask() with no argument briefly does). */
export function currentUmask(): number {
  if (processUmask === undefined) {
    try {
      const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'latin1'));
      if (m) processUmask = Number.parseInt(m[1] as string, 8);
    } catch {
      // not Linux: fall through
    }
    if (processUmask === undefined) processUmask = process.umask();
  }
  return processUmask;
}

/** Creation modes for a queue: what to pass to open/mkdir, and whether a chmod must follow. */
export class Modes {
  readonly file: number;
  readonly dir: number;
  /** True when the process umask would strip bits the queue's umask keeps. */
  readonly fixFile: boolean;
  readonly fixDir: boolean;

  constructor(umask: number | undefined) {
    if (umask === undefined) {
      this.file = 0o666;
      this.dir = 0o777;
      this.fixFile = false;
      this.fixDir = false;
    } else {
      this.file = 0o666 & ~umask;
      this.dir = 0o777 & ~umask;
      const pm = currentUmask();
      this.fixFile = (this.file & pm) !== 0;
      this.fixDir = (this.dir & pm) !== 0;
    }
  }
}

function checkInt(name: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(`invalid ${name}: ${String(v)} (an integer from ${min} to ${max})`);
  }
  return v;
}

export function checkOptions(opts: object, allowed: readonly string[]): void {
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) throw new InvalidOptionError(`unexpected option: ${k}`);
  }
}

/** What QueueSimple and Queue share: path, id, naming, modes, iteration, touch, watch. */
export abstract class QueueBase implements AsyncIterable<string> {
  readonly path: string;
  readonly id: string;
  readonly rndhex: number;
  readonly umask: number | undefined;
  readonly fsync: boolean;
  protected readonly io: Io;
  protected readonly modes: Modes;
  protected readonly names: NameGenerator;
  private cursor: AsyncIterator<string> | undefined;
  /**
   * Top-level entries with a counter directory's name that are not directories (a stray file): iteration, count
   * and watch step over them and record them here, for the caller to report (libraries never print).
   */
  readonly strays = new Set<string>();

  constructor(path: string, opts: BaseOptions) {
    if (typeof path !== 'string' || path === '') throw new InvalidOptionError(`invalid queue path: ${String(path)}`);
    this.umask = checkInt('umask', opts.umask, 0, 0o777);
    this.rndhex = checkInt('rndhex', opts.rndhex, 0, 15) ?? Math.floor(Math.random() * 16);
    if (opts.fsync !== undefined && typeof opts.fsync !== 'boolean') throw new InvalidOptionError('invalid fsync: not a boolean');
    this.fsync = opts.fsync ?? false;
    if (opts.io !== undefined && opts.io !== 'sync' && opts.io !== 'async') {
      throw new InvalidOptionError(`invalid io: ${String(opts.io)} (sync or async)`);
    }
    this.io = opts.io === 'async' ? asyncIo : syncIo;
    this.modes = new Modes(this.umask);
    this.names = new NameGenerator(this.rndhex);
    this.path = path.length > 1 ? path.replace(/\/+$/, '') : path;
    this.makeTree(this.path);
    let st: fs.Stats;
    try {
      st = fs.statSync(this.path);
    } catch (err) {
      throw new FileSystemError('stat', this.path, err);
    }
    this.id = `${st.dev}:${st.ino}`;
  }

  /** `mkdir -p` with the queue's modes; an existing directory is fine, anything else there is not. */
  protected makeTree(path: string): void {
    const missing: string[] = [];
    let p = path;
    for (;;) {
      try {
        const st = fs.statSync(p);
        if (!st.isDirectory())
          throw new FileSystemError('mkdir', path, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
        break;
      } catch (err) {
        if (err instanceof FileSystemError) throw err;
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileSystemError('stat', p, err);
        missing.push(p);
        const parent = join(p, '..');
        if (parent === p) break;
        p = parent;
      }
    }
    for (const dir of missing.reverse()) {
      try {
        fs.mkdirSync(dir, this.modes.dir);
        if (this.modes.fixDir) fs.chmodSync(dir, this.modes.dir);
      } catch (err) {
        // RACE: another process may create the same directory at the same time: EEXIST is success.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new FileSystemError('mkdir', dir, err);
      }
    }
  }

  /** mkdir with the queue's mode; resolves false if it already exists. */
  protected async mkdirQuiet(path: string): Promise<boolean> {
    try {
      await this.io.mkdir(path, this.modes.dir);
    } catch (err) {
      // RACE: a concurrent adder may create the same intermediate directory: EEXIST is fine.
      if ((err as FileSystemError).errno === 'EEXIST') return false;
      throw err;
    }
    if (this.modes.fixDir) await this.io.chmod(path, this.modes.dir);
    return true;
  }

  /** The intermediate directories (8 hex digits), sorted. */
  protected async intermediateDirs(): Promise<string[]> {
    const dirs: string[] = [];
    const ok = await this.io.scan(this.path, (n) => {
      if (DIR_RE.test(n)) dirs.push(n);
    });
    if (!ok)
      throw new FileSystemError('opendir', this.path, Object.assign(new Error('no such file or directory'), { code: 'ENOENT' }));
    return dirs.sort();
  }

  /**
   * Lists a counter directory for iteration, count or watch; a stray file with a counter directory's name is
   * recorded in `strays` and lists as empty (it has no elements), anything else that fails is thrown.
   */
  protected async scanCounterDir(dir: string, onEntry: (name: string) => void): Promise<void> {
    try {
      await this.io.scan(join(this.path, dir), onEntry);
    } catch (err) {
      if ((err as FileSystemError).errno !== 'ENOTDIR') throw err;
      this.strays.add(join(this.path, dir));
    }
  }

  /** The element names of one intermediate directory, sorted, in 8 bytes each. */
  protected async elementsOf(dir: string): Promise<BigUint64Array> {
    let buf = new BigUint64Array(64);
    let n = 0;
    await this.scanCounterDir(dir, (e) => {
      if (!ELT_RE.test(e)) return;
      if (n === buf.length) {
        const bigger = new BigUint64Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      buf[n++] = eltToBig(e);
    });
    return buf.subarray(0, n).sort();
  }

  /**
   * Element names in python-dirq's order: intermediate directories sorted and
   * listed lazily, one at a time, elements sorted within each. Memory is one
   * directory's names at 8 bytes each. Elements added to a directory already
   * passed are seen by the next iteration.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (const dir of await this.intermediateDirs()) {
      for (const v of await this.elementsOf(dir)) yield `${dir}/${bigToElt(v)}`;
    }
  }

  /** python-dirq's `first()`: restarts the iteration and returns the first name, or '' if the queue is empty. */
  async first(): Promise<string> {
    this.cursor = this[Symbol.asyncIterator]();
    return this.next();
  }

  /** python-dirq's `next()`: the next name, or '' at the end (and before `first()`). */
  async next(): Promise<string> {
    if (this.cursor === undefined) return '';
    const r = await this.cursor.next();
    if (r.done) {
      this.cursor = undefined;
      return '';
    }
    return r.value;
  }

  /** Updates the element's modification time (also the lock time), so a long-held lock is not purged. */
  async touch(name: string): Promise<void> {
    await this.io.touch(`${this.path}/${checkName(name)}`);
  }

  /**
   * New element names as they arrive, in arrival batches sorted by name.
   * File-system events are only a wake-up hint: a periodic rescan is the
   * source of truth, so an inotify overflow delays an element, never loses it.
   */
  watch(options: WatchOptions = {}): AsyncIterableIterator<string> {
    return watchQueue(this, options);
  }

  /** Lists one directory's element names for the watcher (unsorted, plain strings). */
  async listForWatch(dir: string): Promise<string[]> {
    const out: string[] = [];
    await this.scanCounterDir(dir, (e) => {
      if (ELT_RE.test(e)) out.push(e);
    });
    return out;
  }

  /** The sorted intermediate directories, for the watcher. */
  listDirsForWatch(): Promise<string[]> {
    return this.intermediateDirs();
  }

  /**
   * For purge: the entries of `dir` that `keep` accepts; none when it cannot be listed (reported in `warnings`:
   * a file where a directory should be, a permission) or when it vanished (a concurrent purge).
   */
  protected async listForPurge(dir: string, warnings: PurgeWarnings, keep: (name: string) => boolean): Promise<string[]> {
    const out: string[] = [];
    try {
      await this.io.scan(dir, (e) => {
        if (keep(e)) out.push(e);
      });
    } catch (err) {
      warnings.failed(dir, err);
      return [];
    }
    return out;
  }

  /** For purge: removes the empty intermediate directories except the newest (adders may be about to use it). */
  protected async removeEmptyDirs(
    dirs: string[],
    warnings: PurgeWarnings,
    pause: () => Promise<void> | undefined,
  ): Promise<number> {
    let removed = 0;
    for (const dir of dirs.slice(0, -1)) {
      const p = join(this.path, dir);
      try {
        await this.io.rmdir(p);
        removed++;
      } catch (err) {
        // RACE: not empty, or another purger got there first: both are fine. Anything else (a file with a
        // directory's name) is reported and left.
        const errno = (err as FileSystemError).errno;
        if (errno !== 'ENOTEMPTY' && errno !== 'EEXIST' && errno !== 'ENOENT') warnings.failed(p, err);
      }
      await pause();
    }
    return removed;
  }

  /**
   * The number of elements. `onDirectory` is told after each intermediate directory (how many of how many were
   * counted), for a progress display: counting stays one pass over each directory, no name per element.
   */
  abstract count(onDirectory?: (done: number, total: number) => void): Promise<number>;
  abstract purge(options?: PurgeOptions): Promise<PurgeResult>;
  abstract lock(name: string, permissive?: boolean): Promise<boolean>;
  abstract unlock(name: string, permissive?: boolean): Promise<boolean>;
  abstract remove(name: string): Promise<void>;
}

/** Validates purge ages (seconds, integer or not; 0 disables). */
export function purgeAges(options: PurgeOptions | undefined): { maxtemp: number; maxlock: number } {
  const o = options ?? {};
  checkOptions(o, ['maxtemp', 'maxlock']);
  const age = (k: 'maxtemp' | 'maxlock', dflt: number): number => {
    const v = o[k];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidOptionError(`invalid ${k}: ${String(v)}`);
    return v;
  };
  return { maxtemp: age('maxtemp', 300), maxlock: age('maxlock', 600) };
}
