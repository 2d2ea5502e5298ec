import * as fs from 'node:fs';
import { join } from 'node:path';
import { type BaseOptions, checkOptions, type PurgeOptions, type PurgeResult, PurgeWarnings, purgeAges, QueueBase } from './base';
import {
  FileSystemError,
  InvalidOptionError,
  NoSuchElementError,
  NotLockedError,
  type QueueError,
  RetryExhaustedError,
  symlinkError,
} from './errors';
import { fdatasyncAsync, NOFOLLOW, syncFileSystem, yielder } from './io';
import { LOCK_SUFFIX, MAX_TRIES, SYNCFS_BATCH, TEMP_SUFFIX } from './layout';
import { checkName, ELT_RE } from './names';
import { failure, type NativeDirq, native, nativeError, publishing, STAGE } from './native';
import { offloadAddMany, offloadLockRead, offloadRemove, offloadUnlocked, toError } from './offload';

export interface QueueSimpleOptions extends BaseOptions {
  /** Seconds per intermediate directory (time bucket); 0 or 1 means one per second. Default 60. */
  granularity?: number;
  /**
   * Use the native binding (native/dirq.c) where it is built and `io` is `sync`: the same files and system calls,
   * one call per operation, and adds published with renameat2(RENAME_NOREPLACE). Default true; false forces the
   * JavaScript path.
   */
  native?: boolean;
}

/**
 * statfs f_type of the file systems that live in memory (tmpfs, ramfs): there a sync writes nothing, so one syncfs is
 * the cheapest way to make a batch of any size "durable", where per-file fdatasyncs cost a thread-pool round trip each.
 */
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);
/** Bound on the in-process record of held locks (it only saves a stat; forgetting is safe). */
const MAX_HELD = 100_000;

function toBuffer(data: Buffer | Uint8Array | string): Buffer {
  if (typeof data === 'string') {
    if (!data.isWellFormed()) throw new InvalidOptionError('invalid element data: string with a lone surrogate');
    return Buffer.from(data, 'utf8');
  }
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidOptionError('invalid element data: not a Buffer, Uint8Array or string');
}

/**
 * A python-dirq / Directory::Queue::Simple compatible queue: each element is
 * one file in a time-bucket directory, locked by a hard link `name.lck`.
 */
export class QueueSimple extends QueueBase {
  readonly granularity: number;
  /** Locks this object took and still holds: remove() need not stat them again. */
  private readonly held = new Set<string>();
  /** The native binding when this queue uses it. */
  private readonly nat: NativeDirq | undefined;
  /** Set on first use by inMemory(). */
  private memoryFs: boolean | undefined;

  constructor(path: string, options: QueueSimpleOptions = {}) {
    checkOptions(options, ['umask', 'rndhex', 'fsync', 'io', 'granularity', 'native']);
    const g = options.granularity ?? 60;
    if (!Number.isInteger(g) || g < 0) throw new InvalidOptionError(`invalid granularity: ${String(g)}`);
    if (options.native !== undefined && typeof options.native !== 'boolean')
      throw new InvalidOptionError('invalid native: not a boolean');
    super(path, options);
    this.granularity = g;
    this.nat = options.native !== false && this.io.kind === 'sync' ? native : undefined;
  }

  /** Whether this queue makes its system calls through the native binding. */
  get usesNative(): boolean {
    return this.nat !== undefined;
  }

  private holding(name: string): void {
    if (this.held.size >= MAX_HELD) this.held.clear();
    this.held.add(name);
  }

  /**
   * Publishes the closed temporary file `tmp` under fresh element names until one is free (the native
   * publish: renameat2(RENAME_NOREPLACE), or link + unlink).
   */
  private publishNative(nat: NativeDirq, dir: string, tmp: string): string {
    for (let i = 0; i < MAX_TRIES; i++) {
      const name = `${dir}/${this.names.next()}`;
      const r = nat.publish(tmp, `${this.path}/${name}`);
      if (r === 0) return name;
      const { stage, errno } = failure(r);
      // RACE: the name is taken (another process, same rndhex, same microsecond): take a new one.
      if (errno === 'EEXIST' && publishing(stage)) continue;
      throw nativeError(r, tmp, `${this.path}/${name}`);
    }
    throw new RetryExhaustedError(`cannot publish ${tmp} into ${join(this.path, dir)}`, MAX_TRIES);
  }

  /**
   * After a native write of the temporary file `tmp` failed to create it: makes the missing bucket directory, or
   * lets a taken temporary name go; the caller then tries again with a new name. Resolves to whether the bucket
   * was made (its parent then needs a sync with fsync); any other failure throws.
   */
  private async tempFailed(code: number, tmp: string, dirPath: string): Promise<boolean> {
    const { stage, errno } = failure(code);
    // The bucket does not exist yet (or a purge just removed it): make it.
    if (stage === STAGE.open && errno === 'ENOENT') return this.mkdirQuiet(dirPath);
    // RACE: another process made the same temporary name in the same microsecond.
    if (stage === STAGE.open && errno === 'EEXIST') return false;
    throw nativeError(code, tmp);
  }

  /** add() through the native binding: one call writes, closes and publishes the element. */
  private async addNative(nat: NativeDirq, buf: Buffer): Promise<string> {
    const dir = this.bucket();
    const dirPath = `${this.path}/${dir}`;
    let created = false;
    for (let i = 0; i < MAX_TRIES; i++) {
      const tmp = `${dirPath}/${this.names.next()}${TEMP_SUFFIX}`;
      const name = `${dir}/${this.names.next()}`;
      const r = nat.writeNew(tmp, `${this.path}/${name}`, buf, this.modes.file, this.modes.fixFile, this.fsync);
      let published = name;
      if (r !== 0) {
        const { stage, errno } = failure(r);
        if (stage === STAGE.open) {
          created = (await this.tempFailed(r, tmp, dirPath)) || created;
          continue;
        }
        if (!publishing(stage)) throw nativeError(r, tmp);
        if (errno !== 'EEXIST') throw nativeError(r, tmp, `${this.path}/${name}`);
        // RACE: the element name is taken: tmp is still there, publish it under another.
        published = this.publishNative(nat, dir, tmp);
      }
      if (this.fsync) await this.syncDirs(dir, created);
      return published;
    }
    throw new RetryExhaustedError(`cannot create a temporary file in ${dirPath}`, MAX_TRIES);
  }

  /** addMany() through the native binding: write and close each file, one syncfs (with fsync), publish each. */
  private async addManyNative(nat: NativeDirq, bufs: Buffer[]): Promise<string[]> {
    const dir = this.bucket();
    const dirPath = `${this.path}/${dir}`;
    const temps: string[] = [];
    let created = false;
    try {
      for (const b of bufs) {
        for (let i = 0; ; i++) {
          if (i >= MAX_TRIES) throw new RetryExhaustedError(`cannot create a temporary file in ${dirPath}`, MAX_TRIES);
          const tmp = `${dirPath}/${this.names.next()}${TEMP_SUFFIX}`;
          const r = nat.writeTemp(tmp, b, this.modes.file, this.modes.fixFile, false);
          if (r === 0) {
            temps.push(tmp);
            break;
          }
          created = (await this.tempFailed(r, tmp, dirPath)) || created;
        }
      }
      // Data must be durable before any name is published: a crash must never leave an empty element.
      if (this.fsync) {
        const r = nat.syncfs(this.path);
        if (r !== 0) throw nativeError(r, this.path);
      }
    } catch (err) {
      for (const t of temps) await this.discard(-1, t);
      throw err;
    }
    const names = temps.map((t) => this.publishNative(nat, dir, t));
    if (this.fsync) await this.syncDirs(dir, created);
    return names;
  }

  /** Whether the queue is on tmpfs or ramfs (asked once; anything unknown counts as a disk). */
  private inMemory(): boolean {
    if (this.memoryFs === undefined) {
      try {
        this.memoryFs = MEMORY_FS.has(Number(fs.statfsSync(this.path).type));
      } catch {
        this.memoryFs = false;
      }
    }
    return this.memoryFs;
  }

  private bucket(): string {
    let t = Math.floor(Date.now() / 1000);
    if (this.granularity > 1) t -= t % this.granularity;
    return t.toString(16).padStart(8, '0');
  }

  /** Writes `data` to a new temporary file in `dir` (left open); returns it and whether `dir` was created. */
  private async writeTemp(dir: string, data: Buffer): Promise<{ tmp: string; fd: number; created: boolean }> {
    let created = false;
    for (let i = 0; i < MAX_TRIES; i++) {
      const tmp = join(this.path, dir, this.names.next() + TEMP_SUFFIX);
      let fd: number;
      try {
        fd = await this.io.createExclusive(tmp, this.modes.file);
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        if (errno === 'ENOENT') {
          // The bucket does not exist yet (or a purge just removed it): make it and retry.
          created = (await this.mkdirQuiet(join(this.path, dir))) || created;
          continue;
        }
        // RACE: another process made the same name in the same microsecond: take a new one.
        if (errno === 'EEXIST') continue;
        throw err;
      }
      try {
        if (this.modes.fixFile) await this.io.fchmod(fd, this.modes.file, tmp);
        await this.io.writeAll(fd, data, tmp);
      } catch (err) {
        await this.discard(fd, tmp);
        throw err;
      }
      return { tmp, fd, created };
    }
    throw new RetryExhaustedError(`cannot create a temporary file in ${join(this.path, dir)}`, MAX_TRIES);
  }

  /** Best-effort clean-up after a failed write; fd -1 means already closed. */
  private async discard(fd: number, tmp: string): Promise<void> {
    if (fd >= 0) {
      await Promise.resolve()
        .then(() => this.io.close(fd, tmp))
        .catch(() => undefined);
    }
    await Promise.resolve()
      .then(() => this.io.unlink(tmp))
      .catch(() => undefined);
  }

  /** Publishes `tmp` under a fresh element name with link(): an existing element is never overwritten. */
  private async publish(dir: string, tmp: string, unlinkSource: boolean): Promise<string> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const name = `${dir}/${this.names.next()}`;
      try {
        await this.io.link(tmp, `${this.path}/${name}`);
      } catch (err) {
        // RACE: the name is taken (another process, same rndhex, same microsecond): take a new one.
        if ((err as FileSystemError).errno === 'EEXIST') continue;
        throw err;
      }
      if (unlinkSource) await this.io.unlink(tmp);
      return name;
    }
    throw new RetryExhaustedError(`cannot link ${tmp} into ${join(this.path, dir)}`, MAX_TRIES);
  }

  private async fdatasyncPath(path: string): Promise<void> {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(path, fs.constants.O_RDONLY | NOFOLLOW, (err, fd) =>
        err ? reject(new FileSystemError('open', path, err)) : resolve(fd),
      ),
    );
    try {
      await fdatasyncAsync(fd, path);
    } finally {
      fs.close(fd, () => undefined);
    }
  }

  private async syncDirs(dir: string, created: boolean): Promise<void> {
    const nat = this.nat;
    if (nat !== undefined) {
      for (const p of created ? [`${this.path}/${dir}`, this.path] : [`${this.path}/${dir}`]) {
        const r = nat.fsync(p);
        if (r !== 0) throw nativeError(r, p);
      }
      return;
    }
    await this.io.fsyncDir(join(this.path, dir));
    if (created) await this.io.fsyncDir(this.path);
  }

  /** Adds an element; resolves to its name `dir/name` once it is visible (and durable with `fsync`). */
  async add(data: Buffer | Uint8Array | string): Promise<string> {
    const buf = toBuffer(data);
    if (this.nat !== undefined) return this.addNative(this.nat, buf);
    const dir = this.bucket();
    const { tmp, fd, created } = await this.writeTemp(dir, buf);
    try {
      if (this.fsync) await this.io.fdatasync(fd, tmp);
    } catch (err) {
      await this.discard(fd, tmp);
      throw err;
    }
    await this.io.close(fd, tmp);
    const name = await this.publish(dir, tmp, true);
    if (this.fsync) await this.syncDirs(dir, created);
    return name;
  }

  /**
   * Adds many elements at once. With `fsync`, the file syncs run concurrently
   * and each directory is synced once, so the batch costs about one journal
   * commit instead of one per element. Resolves to the names, in order.
   */
  async addMany(items: Iterable<Buffer | Uint8Array | string>): Promise<string[]> {
    const bufs = Array.from(items, toBuffer);
    if (bufs.length === 0) return [];
    // Small batches with fsync keep the concurrent fdatasyncs of the JavaScript path, except in memory.
    if (this.nat !== undefined && (!this.fsync || bufs.length >= SYNCFS_BATCH || this.inMemory()))
      return this.addManyNative(this.nat, bufs);
    const dir = this.bucket();
    const temps: { tmp: string; fd: number }[] = [];
    let created = false;
    const names: string[] = [];
    // Small batches keep their files open for concurrent fdatasyncs; big ones close each file at
    // once (a batch may be larger than the open-file limit) and are made durable by one syncfs.
    const viaSyncfs = this.fsync && bufs.length >= SYNCFS_BATCH;
    try {
      for (const b of bufs) {
        const w = await this.writeTemp(dir, b);
        created ||= w.created;
        temps.push(w);
        if (!this.fsync || viaSyncfs) {
          const fd = w.fd;
          w.fd = -1;
          await this.io.close(fd, w.tmp);
        }
      }
      if (this.fsync && !viaSyncfs) await Promise.all(temps.map((t) => fdatasyncAsync(t.fd, t.tmp)));
      for (const t of temps) {
        if (t.fd >= 0) await this.io.close(t.fd, t.tmp);
        t.fd = -1;
      }
      // Data must be durable before any name is published: a crash must never leave an empty element.
      if (viaSyncfs && !(await syncFileSystem(this.path))) {
        for (const t of temps) await this.fdatasyncPath(t.tmp);
      }
    } catch (err) {
      for (const t of temps) await this.discard(t.fd, t.tmp);
      throw err;
    }
    for (const t of temps) names.push(await this.publish(dir, t.tmp, true));
    if (this.fsync) await this.syncDirs(dir, created);
    return names;
  }

  /**
   * addMany() on a helper thread (see offload.ts): same files, same order of system calls, same
   * durability (with `fsync`, the data is durable before any name is published), but the event loop
   * only hands the batch over and goes on (receiving the next messages, say) while the thread writes.
   * Resolves to the names, in order.
   */
  async addBatch(items: Iterable<Buffer | Uint8Array | string>): Promise<string[]> {
    const bufs = Array.from(items, toBuffer);
    if (bufs.length === 0) return [];
    const dir = this.bucket();
    const names = await offloadAddMany({
      root: this.path,
      dir: join(this.path, dir),
      names: bufs.map(() => this.names.next()),
      items: bufs,
      rndhex: this.rndhex,
      fileMode: this.modes.file,
      dirMode: this.modes.dir,
      fixFile: this.modes.fixFile,
      fixDir: this.modes.fixDir,
      fsync: this.fsync,
      syncfsBatch: SYNCFS_BATCH,
    });
    return names.map((n) => `${dir}/${n}`);
  }

  /**
   * Adds an existing file as an element by hard-linking it in (same file system only, EXDEV otherwise);
   * the file disappears from its old path, like python-dirq's add_path.
   */
  async addPath(file: string): Promise<string> {
    // A hard link to a symbolic link would make the element a link: refused.
    if ((await this.io.lstat(file)).isSymbolicLink()) throw symlinkError('link', file);
    const dir = this.bucket();
    const created = await this.mkdirQuiet(join(this.path, dir));
    if (this.fsync) await this.fdatasyncPath(file);
    const name = await this.publish(dir, file, true);
    if (this.fsync) await this.syncDirs(dir, created);
    return name;
  }

  /**
   * Locks an element: hard link `name.lck`, then utime (the lock time).
   * Permissive: resolves false if the element is locked or gone; otherwise that throws.
   */
  async lock(name: string, permissive = true): Promise<boolean> {
    const path = `${this.path}/${checkName(name)}`;
    const lock = `${path}${LOCK_SUFFIX}`;
    if (this.nat !== undefined) {
      const r = this.nat.lock(path);
      if (r !== 0) {
        const { stage, errno } = failure(r);
        // RACE: another process locked (EEXIST) or removed (ENOENT) it first, or locked and removed it between
        // our link and utime (ENOENT at utime; the binding undid our link, the only name left of a consumed element).
        if (permissive && (errno === 'EEXIST' || errno === 'ENOENT')) return false;
        throw nativeError(r, path, stage === STAGE.link ? lock : undefined);
      }
      this.holding(name);
      return true;
    }
    const errno = await this.io.tryLink(path, lock);
    if (errno !== undefined) {
      // RACE: another process locked (EEXIST) or removed (ENOENT) it first.
      if (permissive && (errno === 'EEXIST' || errno === 'ENOENT')) return false;
      await this.io.link(path, lock); // fails again, with the whole story in the error
    }
    try {
      await this.io.touch(path);
    } catch (err) {
      // RACE: another process locked and removed the element between link and utime:
      // our link now names the only copy of a consumed element; undo it.
      if ((err as FileSystemError).errno === 'ENOENT') {
        await Promise.resolve(this.io.unlink(lock)).catch(() => undefined);
        if (permissive) return false;
      }
      throw err;
    }
    this.holding(name);
    return true;
  }

  /**
   * Of `names`, those not locked now (no `name.lck`), checked on a helper thread (see offload.ts). A
   * lock taken right after the check is still possible: lockGetMany() then reports it.
   */
  async unlockedOf(names: readonly string[]): Promise<string[]> {
    const paths = names.map((n) => `${this.path}/${checkName(n)}`);
    if (this.nat !== undefined) {
      const unlocked = this.nat.unlockedMany(paths);
      return names.filter((_, i) => unlocked[i] === 1);
    }
    const free = await offloadUnlocked(paths);
    return names.filter((_, i) => free[i]);
  }

  /**
   * lock() (permissive) then get() for each name, in order, in one batch on a helper thread (see
   * offload.ts): the event loop pays one message for the batch instead of six system calls per
   * element, and goes on meanwhile. Per name: the bytes (the element is now locked by us), null if
   * another process holds it or it is gone, or the error (the element is then left unlocked).
   */
  async lockGetMany(names: readonly string[]): Promise<(Buffer | null | FileSystemError)[]> {
    if (names.length === 0) return [];
    const paths = names.map((n) => `${this.path}/${checkName(n)}`);
    if (this.nat !== undefined) {
      return this.nat.lockReadMany(paths).map((r, i) => {
        if (Buffer.isBuffer(r)) {
          this.holding(names[i] as string);
          return r;
        }
        const { stage, errno } = failure(r);
        // RACE: locked or removed by another process first (see lock()).
        if ((stage === STAGE.link || stage === STAGE.utime) && (errno === 'EEXIST' || errno === 'ENOENT')) return null;
        const path = paths[i] as string;
        return stage === STAGE.link
          ? nativeError(r, path, `${path}${LOCK_SUFFIX}`)
          : nativeError(r, stage === STAGE.utime ? path : `${path}${LOCK_SUFFIX}`);
      });
    }
    const out = await offloadLockRead(paths);
    for (const [i, r] of out.entries()) if (Buffer.isBuffer(r)) this.holding(names[i] as string);
    return out;
  }

  /**
   * remove() for each name, in one batch on a helper thread (see offload.ts; removals have their own
   * thread, so a slow disk does not hold reads up). Per name: undefined once removed, or the error
   * remove() would have thrown (NotLockedError, NoSuchElementError, FileSystemError).
   */
  async removeMany(names: readonly string[]): Promise<(QueueError | undefined)[]> {
    if (names.length === 0) return [];
    const paths = names.map((n) => `${this.path}/${checkName(n)}`);
    const checked = names.map((n) => !this.held.delete(n));
    if (this.nat !== undefined) {
      const codes = this.nat.removeMany(
        paths,
        Uint8Array.from(checked, (c) => (c ? 1 : 0)),
      );
      const errors: (QueueError | undefined)[] = [];
      for (const [i, r] of codes.entries()) {
        if (r === 0) errors.push(undefined);
        else errors.push(await this.removeFailure(names[i] as string, r).catch((e) => e));
      }
      return errors;
    }
    const out = await offloadRemove(paths, checked);
    const errors: (QueueError | undefined)[] = [];
    for (const [i, f] of out.entries()) {
      if (f === undefined) errors.push(undefined);
      else if (f.syscall === 'lstat' && checked[i])
        errors.push(await this.explainMissing(names[i] as string, toError(f)).catch((e) => e));
      else errors.push(toError(f));
    }
    return errors;
  }

  /** Unlocks an element (removes `name.lck`). Permissive: resolves false if it was not locked. */
  async unlock(name: string, permissive = false): Promise<boolean> {
    this.held.delete(name);
    try {
      await this.io.unlink(`${this.path}/${checkName(name)}${LOCK_SUFFIX}`);
    } catch (err) {
      if (permissive && (err as FileSystemError).errno === 'ENOENT') return false;
      throw err;
    }
    return true;
  }

  private async explainMissing(name: string, err: unknown): Promise<never> {
    if ((err as FileSystemError).errno === 'ENOENT') {
      const path = `${this.path}/${name}`;
      try {
        await this.io.lstat(path);
      } catch {
        throw new NoSuchElementError(path);
      }
      throw new NotLockedError(path);
    }
    throw err;
  }

  /** The error remove() throws for a native failure code. */
  private async removeFailure(name: string, code: number): Promise<never> {
    const path = `${this.path}/${name}`;
    const { stage } = failure(code);
    if (stage === STAGE.lstat) return this.explainMissing(name, nativeError(code, `${path}${LOCK_SUFFIX}`));
    throw nativeError(code, stage === STAGE.unlinkLock ? `${path}${LOCK_SUFFIX}` : path);
  }

  /** Reads a locked element's bytes (through its lock file, as python-dirq does). */
  async get(name: string): Promise<Buffer> {
    const lock = `${this.path}/${checkName(name)}${LOCK_SUFFIX}`;
    if (this.nat !== undefined) {
      const r = this.nat.readFile(lock);
      return Buffer.isBuffer(r) ? r : this.explainMissing(name, nativeError(r, lock));
    }
    try {
      return await this.io.readFile(lock);
    } catch (err) {
      return this.explainMissing(name, err);
    }
  }

  /** The path to read a locked element from: `path/name.lck`. */
  getPath(name: string): string {
    return `${this.path}/${checkName(name)}${LOCK_SUFFIX}`;
  }

  /**
   * Removes a locked element. Unlike python-dirq, an element that is not
   * locked is refused before anything is deleted (NotLockedError).
   */
  async remove(name: string): Promise<void> {
    const path = `${this.path}/${checkName(name)}`;
    const lock = `${path}${LOCK_SUFFIX}`;
    if (this.nat !== undefined) {
      // RACE: as below; the binding makes the same calls in the same order.
      const r = this.nat.remove(path, !this.held.delete(name));
      if (r !== 0) await this.removeFailure(name, r);
      return;
    }
    if (!this.held.delete(name)) {
      try {
        await this.io.lstat(lock);
      } catch (err) {
        return this.explainMissing(name, err);
      }
    }
    // RACE: only a purge of a stale lock can unlock it between the check and here, and that is what
    // maxlock means. The data goes first: once it is gone nobody can lock the element again.
    try {
      await this.io.unlink(path);
    } catch (err) {
      if ((err as FileSystemError).errno !== 'ENOENT') throw err;
    }
    await this.io.unlink(lock);
  }

  /** Counts the elements (locked ones once; temporary and lock files not at all), with bounded memory. */
  async count(onDirectory?: (done: number, total: number) => void): Promise<number> {
    let n = 0;
    const dirs = await this.intermediateDirs();
    for (const [i, dir] of dirs.entries()) {
      await this.scanCounterDir(dir, (e) => {
        if (ELT_RE.test(e)) n++;
      });
      onDirectory?.(i + 1, dirs.length);
    }
    return n;
  }

  /**
   * Removes temporary files older than `maxtemp`, breaks locks older than
   * `maxlock` (seconds; 0 disables), and removes empty intermediate
   * directories except the newest, as python-dirq does. What is not the
   * queue's own, or cannot be removed, is left and reported in `warnings`.
   */
  async purge(options?: PurgeOptions): Promise<PurgeResult> {
    const { maxtemp, maxlock } = purgeAges(options);
    const warnings = new PurgeWarnings();
    const result: PurgeResult = { removedTemporary: 0, brokenLocks: 0, removedDirectories: 0, warnings: warnings.list };
    const dirs = await this.intermediateDirs();
    const now = Date.now() / 1000;
    const oldtemp = maxtemp ? now - maxtemp : 0;
    const oldlock = maxlock ? now - maxlock : 0;
    const pause = yielder();
    if (oldtemp || oldlock) {
      for (const dir of dirs) {
        const dirPath = join(this.path, dir);
        // python-dirq's test is /(.tmp|.lck)$/: any such file, not only ours.
        const volatile = await this.listForPurge(
          dirPath,
          warnings,
          (e) => (oldtemp !== 0 && e.endsWith(TEMP_SUFFIX)) || (oldlock !== 0 && e.endsWith(LOCK_SUFFIX)),
        );
        for (const e of volatile) {
          const p = join(dirPath, e);
          try {
            let st: fs.Stats;
            try {
              st = await this.io.lstat(p);
            } catch (err) {
              // RACE: unlocked, removed or published meanwhile.
              if ((err as FileSystemError).errno === 'ENOENT') continue;
              throw err;
            }
            // The queue only ever makes files here: a directory of that name is someone else's.
            if (st.isDirectory()) {
              warnings.left(p, 'not a file');
              continue;
            }
            const isTemp = e.endsWith(TEMP_SUFFIX);
            if (st.mtimeMs / 1000 >= (isTemp ? oldtemp : oldlock)) continue;
            try {
              await this.io.unlink(p);
              if (isTemp) result.removedTemporary++;
              else result.brokenLocks++;
            } catch (err) {
              if ((err as FileSystemError).errno !== 'ENOENT') throw err;
            }
          } catch (err) {
            warnings.failed(p, err);
          }
          await pause();
        }
        await pause();
      }
    }
    result.removedDirectories = await this.removeEmptyDirs(dirs, warnings, pause);
    return result;
  }
}
