import type * as fs from 'node:fs';
import { join } from 'node:path';
import { type BaseOptions, checkOptions, type PurgeOptions, type PurgeResult, PurgeWarnings, purgeAges, QueueBase } from './base';
import {
  DataError,
  FileSystemError,
  InvalidOptionError,
  NoSuchElementError,
  NotLockedError,
  QueueError,
  RetryExhaustedError,
  symlinkError,
} from './errors';
import { yielder } from './io';
import { MAX_TRIES } from './layout';
import { checkName, DIR_RE, ELT_RE } from './names';
import { stringToTable, tableToString } from './table';

export type FieldType = 'binary' | 'string' | 'table';
export type FieldValue = Buffer | string | Record<string, string>;
export type ElementData = Record<string, FieldValue>;

export interface QueueOptions extends BaseOptions {
  /** Field name -> `binary` | `string` | `table`, with `?` for optional (and `*`, accepted and ignored). */
  schema?: Record<string, string>;
  /** Elements per intermediate directory. Default 16000. */
  maxelts?: number;
}

interface Field {
  name: string;
  type: FieldType;
  optional: boolean;
}

const TEMPORARY = 'temporary';
const OBSOLETE = 'obsolete';
const LOCKED = 'locked';
const FIELD_RE = /^[0-9a-zA-Z]+$/;
const TYPE_RE = /^(binary|string|table)([?*]{0,2})$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Validates a schema, reporting every problem at once. */
export function parseSchema(schema: unknown): Field[] {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new InvalidOptionError('invalid schema: not an object of field name -> type');
  }
  const problems: string[] = [];
  const fields: Field[] = [];
  for (const [name, type] of Object.entries(schema as Record<string, unknown>)) {
    if (!FIELD_RE.test(name)) problems.push(`invalid schema name: ${JSON.stringify(name)}`);
    // python-dirq allows it, but a field called "locked" would be the lock directory.
    else if (name === LOCKED) problems.push('invalid schema name: "locked" is reserved');
    const m = typeof type === 'string' ? TYPE_RE.exec(type) : null;
    if (m === null) {
      problems.push(`invalid schema type for ${JSON.stringify(name)}: ${JSON.stringify(type)}`);
      continue;
    }
    fields.push({ name, type: m[1] as FieldType, optional: (m[2] as string).includes('?') });
  }
  if (problems.length === 0 && !fields.some((f) => !f.optional)) problems.push('invalid schema: no mandatory data');
  if (problems.length > 0) throw new InvalidOptionError(problems.join('; '));
  return fields;
}

function encodeField(field: Field, value: unknown): Buffer {
  switch (field.type) {
    case 'binary':
      if (Buffer.isBuffer(value)) return value;
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      throw new DataError(`unexpected ${field.name} data: binary needs a Buffer`);
    case 'string':
      if (typeof value !== 'string') throw new DataError(`unexpected ${field.name} data: string needs a string`);
      if (!value.isWellFormed()) throw new DataError(`unexpected ${field.name} data: string with a lone surrogate`);
      return Buffer.from(value, 'utf8');
    case 'table': {
      if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
        throw new DataError(`unexpected ${field.name} data: table needs an object of strings`);
      }
      const text = tableToString(value as Record<string, string>);
      if (!text.isWellFormed()) throw new DataError(`unexpected ${field.name} data: table with a lone surrogate`);
      return Buffer.from(text, 'utf8');
    }
  }
}

function decodeField(field: Field, path: string, bytes: Buffer): FieldValue {
  if (field.type === 'binary') return bytes;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (err) {
    throw new DataError(`invalid UTF-8 in ${path}`, err);
  }
  return field.type === 'string' ? text : stringToTable(text);
}

/**
 * A python-dirq `Queue` / Directory::Queue::Normal compatible queue: each
 * element is a directory of one file per schema field, built in
 * `temporary/`, renamed into a counter directory, locked by `mkdir locked`.
 */
export class Queue extends QueueBase {
  readonly maxelts: number;
  readonly schema: Readonly<Record<string, string>> | undefined;
  private readonly fields: Field[] | undefined;

  constructor(path: string, options: QueueOptions = {}) {
    checkOptions(options, ['umask', 'rndhex', 'fsync', 'io', 'schema', 'maxelts']);
    const maxelts = options.maxelts ?? 16000;
    if (!Number.isInteger(maxelts) || maxelts < 1) throw new InvalidOptionError(`invalid maxelts: ${String(maxelts)}`);
    // Validated before the constructor creates anything on disk.
    const fields = options.schema === undefined ? undefined : parseSchema(options.schema);
    super(path, options);
    this.maxelts = maxelts;
    this.fields = fields;
    this.schema = options.schema === undefined ? undefined : Object.freeze({ ...options.schema });
    this.makeTree(join(this.path, TEMPORARY));
    this.makeTree(join(this.path, OBSOLETE));
  }

  private requireSchema(): Field[] {
    if (this.fields === undefined)
      throw new QueueError('ERR_DIRQ_NO_SCHEMA', 'unknown schema: this queue was opened without one');
    return this.fields;
  }

  /** The directory new elements go to: the last counter directory, or the next one once it holds maxelts. */
  private async insertionDirectory(): Promise<{ dir: string; created: boolean }> {
    const dirs = (await this.io.readdir(this.path)).filter((d) => DIR_RE.test(d)).sort();
    const last = dirs[dirs.length - 1];
    if (last === undefined) {
      const dir = '00000000';
      return { dir, created: await this.mkdirQuiet(join(this.path, dir)) };
    }
    let size: number;
    try {
      size = await this.subdirCount(last);
    } catch (err) {
      // RACE: a purge removed it after we listed it: move on to the next one.
      if ((err as FileSystemError).errno !== 'ENOENT') throw err;
      size = this.maxelts;
    }
    if (size < this.maxelts) return { dir: last, created: false };
    const dir = (Number.parseInt(last, 16) + 1).toString(16).padStart(8, '0');
    return { dir, created: await this.mkdirQuiet(join(this.path, dir)) };
  }

  /** Sub-directories of an intermediate directory: st_nlink - 2 where the file system counts them, else readdir. */
  private async subdirCount(dir: string): Promise<number> {
    const path = join(this.path, dir);
    const st = await this.io.lstat(path);
    // A file's nlink says nothing of sub-directories (a hard-linked one has 2 and more).
    if (!st.isDirectory()) {
      throw new FileSystemError('lstat', path, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
    }
    // btrfs (and some others) report nlink 1 for every directory: count entries instead (Perl 2.2 does so too).
    if (st.nlink >= 2) return st.nlink - 2;
    return (await this.io.readdir(path)).filter((e) => ELT_RE.test(e)).length;
  }

  /** Adds an element; resolves to `NNNNNNNN/<14hex>` once it is visible (and durable with `fsync`). */
  async add(data: ElementData): Promise<string> {
    const fields = this.requireSchema();
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new DataError('unexpected data: not an object');
    for (const key of Object.keys(data)) {
      if (!fields.some((f) => f.name === key)) throw new DataError(`unexpected data: ${key}`);
    }
    // Unlike python-dirq, check everything before creating anything: a bad add leaves nothing to purge.
    const files: [string, Buffer][] = [];
    for (const f of fields) {
      const v = data[f.name];
      if (v === undefined) {
        if (!f.optional) throw new DataError(`missing mandatory data: ${f.name}`);
        continue;
      }
      files.push([f.name, encodeField(f, v)]);
    }
    const temp = await this.makeTemporary();
    try {
      for (const [name, bytes] of files) {
        const p = join(temp, name);
        const fd = await this.io.createExclusive(p, this.modes.file);
        try {
          if (this.modes.fixFile) await this.io.fchmod(fd, this.modes.file, p);
          await this.io.writeAll(fd, bytes, p);
          if (this.fsync) await this.io.fdatasync(fd, p);
        } finally {
          await this.io.close(fd, p);
        }
      }
      if (this.fsync) await this.io.fsyncDir(temp);
    } catch (err) {
      await this.destroy(temp).catch(() => undefined);
      throw err;
    }
    for (let i = 0; i < MAX_TRIES; i++) {
      const { dir, created } = await this.insertionDirectory();
      const name = `${dir}/${this.names.next()}`;
      try {
        await this.io.rename(temp, `${this.path}/${name}`);
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        // RACE: the name exists (ENOTEMPTY/EEXIST), or the directory was purged (ENOENT): try again.
        if (errno === 'ENOTEMPTY' || errno === 'EEXIST' || errno === 'ENOENT') continue;
        throw err;
      }
      if (this.fsync) {
        await this.io.fsyncDir(join(this.path, dir));
        if (created) await this.io.fsyncDir(this.path);
      }
      return name;
    }
    throw new RetryExhaustedError(`cannot move ${temp} into ${this.path}`, MAX_TRIES);
  }

  private async makeTemporary(): Promise<string> {
    for (let i = 0; i < MAX_TRIES; i++) {
      const temp = join(this.path, TEMPORARY, this.names.next());
      try {
        await this.io.mkdir(temp, this.modes.dir);
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        if (errno === 'EEXIST') continue;
        if (errno === 'ENOENT') {
          await this.mkdirQuiet(join(this.path, TEMPORARY));
          continue;
        }
        throw err;
      }
      if (this.modes.fixDir) await this.io.chmod(temp, this.modes.dir);
      return temp;
    }
    throw new RetryExhaustedError(`cannot create a directory in ${join(this.path, TEMPORARY)}`, MAX_TRIES);
  }

  /**
   * Locks an element (`mkdir name/locked`). The lock's age is the element directory's mtime, which the mkdir sets:
   * purges (this one and python-dirq's) judge stale locks by it, not by `locked`'s own mtime, so whoever holds a lock
   * for long refreshes the directory. Permissive: false if locked or gone.
   */
  async lock(name: string, permissive = true): Promise<boolean> {
    const path = `${this.path}/${checkName(name)}`;
    const lock = join(path, LOCKED);
    // mkdir has no O_NOFOLLOW: an element that is a link to a directory elsewhere is refused before anything is
    // made there. RACE: swapping the element for a link between this check and mkdir needs write access to the
    // counter directory, and then makes an empty `locked` in the target, nothing more (get() checks again).
    await this.refuseLink(path);
    const errno = await this.io.tryMkdir(lock, this.modes.dir);
    if (errno !== undefined) {
      // RACE: another process locked (EEXIST) or removed (ENOENT) it first.
      if (permissive && (errno === 'EEXIST' || errno === 'ENOENT')) return false;
      await this.io.mkdir(lock, this.modes.dir); // fails again, with the whole story in the error
    }
    try {
      if (this.modes.fixDir) await this.io.chmod(lock, this.modes.dir);
      await this.io.lstat(lock);
    } catch (err) {
      // RACE: the element was locked and removed by another process right after our mkdir.
      if (permissive && (err as FileSystemError).errno === 'ENOENT') return false;
      throw err;
    }
    return true;
  }

  /** Unlocks an element (`rmdir name/locked`). Permissive: false if it was not locked. */
  async unlock(name: string, permissive = false): Promise<boolean> {
    try {
      await this.io.rmdir(join(this.path, checkName(name), LOCKED));
    } catch (err) {
      if (permissive && (err as FileSystemError).errno === 'ENOENT') return false;
      throw err;
    }
    return true;
  }

  /** Throws ELOOP if `path` is a symbolic link (gone is fine: the caller's next call says so). */
  private async refuseLink(path: string): Promise<void> {
    const st = await this.lstatQuiet(path);
    if (st?.isSymbolicLink()) throw symlinkError('lstat', path);
  }

  private async requireLocked(name: string): Promise<string> {
    const path = `${this.path}/${checkName(name)}`;
    // Field files are read with O_NOFOLLOW; the element directory itself must not be a link either.
    await this.refuseLink(path);
    try {
      const st = await this.io.lstat(join(path, LOCKED));
      if (st.isDirectory()) return path;
    } catch (err) {
      if ((err as FileSystemError).errno !== 'ENOENT' && (err as FileSystemError).errno !== 'ENOTDIR') throw err;
    }
    try {
      await this.io.lstat(path);
    } catch {
      throw new NoSuchElementError(path);
    }
    throw new NotLockedError(path);
  }

  /** Reads a locked element: `binary` fields as Buffers, `string` as strings, `table` as objects. */
  async get(name: string): Promise<ElementData> {
    const fields = this.requireSchema();
    const path = await this.requireLocked(name);
    const out: ElementData = {};
    for (const f of fields) {
      const p = join(path, f.name);
      let bytes: Buffer;
      try {
        bytes = await this.io.readFile(p);
      } catch (err) {
        if ((err as FileSystemError).errno !== 'ENOENT') throw err;
        if (!f.optional) throw new DataError(`missing data file: ${p}`, err);
        continue;
      }
      out[f.name] = decodeField(f, p, bytes);
    }
    return out;
  }

  /** The element's directory. */
  getPath(name: string): string {
    return `${this.path}/${checkName(name)}`;
  }

  /** Removes a locked element: renamed into `obsolete/` first, so it vanishes atomically, then deleted with all it holds. */
  async remove(name: string): Promise<void> {
    const path = await this.requireLocked(name);
    let moved: string | undefined;
    for (let i = 0; i < MAX_TRIES && moved === undefined; i++) {
      const target = join(this.path, OBSOLETE, this.names.next());
      try {
        await this.io.rename(path, target);
        moved = target;
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        if (errno === 'ENOTEMPTY' || errno === 'EEXIST') continue;
        // obsolete/ was removed by hand: recreate it, unless it is the element that vanished.
        if (errno === 'ENOENT' && (await this.mkdirQuiet(join(this.path, OBSOLETE)))) continue;
        throw err;
      }
    }
    if (moved === undefined) throw new RetryExhaustedError(`cannot move ${path} into ${join(this.path, OBSOLETE)}`, MAX_TRIES);
    // The element left the queue with the rename, atomically: removed it is. What cannot be deleted now stays in
    // obsolete/ for the purge, which finishes it (or reports it) later.
    await this.destroy(moved).catch(() => undefined);
  }

  /**
   * Deletes an element directory that nobody else can reach any more (under temporary/ or obsolete/), with
   * whatever it holds: it is the queue's own (sub-directories included, links removed and never followed).
   */
  private async destroy(dir: string): Promise<void> {
    for (let i = 0; i < MAX_TRIES; i++) {
      try {
        await this.io.removeTree(dir);
        return;
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        if (errno === 'ENOENT') return;
        // RACE: a process that still had the old name re-created `locked` in between: remove it again.
        if (errno !== 'ENOTEMPTY' && errno !== 'EEXIST') throw err;
      }
    }
    throw new RetryExhaustedError(`cannot remove ${dir}`, MAX_TRIES);
  }

  /** Counts the elements of the counter directories (not temporary/ or obsolete/, unlike python-dirq). */
  async count(onDirectory?: (done: number, total: number) => void): Promise<number> {
    let n = 0;
    const dirs = await this.intermediateDirs();
    for (const [i, dir] of dirs.entries()) {
      try {
        n += await this.subdirCount(dir);
      } catch (err) {
        const errno = (err as FileSystemError).errno;
        // A stray file with a counter directory's name holds no element: stepped over, as iteration does.
        if (errno === 'ENOTDIR') this.strays.add(join(this.path, dir));
        // RACE: purged (so empty) since we listed it.
        else if (errno !== 'ENOENT') throw err;
      }
      onDirectory?.(i + 1, dirs.length);
    }
    return n;
  }

  /**
   * Removes empty counter directories (except the last), temporary and
   * obsolete element directories older than `maxtemp` (with all they hold),
   * and breaks locks older than `maxlock` (seconds; 0 disables). What is not
   * the queue's own, or cannot be removed, is left and reported in `warnings`.
   */
  async purge(options?: PurgeOptions): Promise<PurgeResult> {
    const { maxtemp, maxlock } = purgeAges(options);
    const warnings = new PurgeWarnings();
    const pause = yielder();
    const dirs = await this.intermediateDirs();
    const result: PurgeResult = {
      removedTemporary: 0,
      brokenLocks: 0,
      removedDirectories: await this.removeEmptyDirs(dirs, warnings, pause),
      warnings: warnings.list,
    };
    const now = Date.now() / 1000;
    if (maxtemp) {
      const old = now - maxtemp;
      for (const sub of [TEMPORARY, OBSOLETE]) {
        const subPath = join(this.path, sub);
        for (const e of await this.listForPurge(subPath, warnings, () => true)) {
          const p = join(subPath, e);
          // Element directories are the queue's own (made by add, moved here by remove): whatever they hold
          // goes with them. Anything else here was put by someone else and stays.
          if (!ELT_RE.test(e)) {
            warnings.left(p, 'not an element');
            continue;
          }
          try {
            const st = await this.lstatQuiet(p);
            if (st === undefined) continue;
            if (!st.isDirectory()) {
              warnings.left(p, 'not a directory');
              continue;
            }
            if (st.mtimeMs / 1000 >= old) continue;
            await this.io.removeTree(p);
            result.removedTemporary++;
          } catch (err) {
            warnings.failed(p, err);
          }
          await pause();
        }
      }
    }
    if (maxlock) {
      const old = now - maxlock;
      for (const dir of dirs) {
        for (const e of await this.listForPurge(join(this.path, dir), warnings, (n) => ELT_RE.test(n))) {
          const name = `${dir}/${e}`;
          const p = `${this.path}/${name}`;
          try {
            const st = await this.lstatQuiet(p);
            await pause();
            if (st === undefined) continue;
            if (!st.isDirectory()) {
              warnings.left(p, 'not a directory');
              continue;
            }
            // nlink 2 on a file system that counts sub-directories: no `locked`, nothing more to check.
            if (st.mtimeMs / 1000 >= old || st.nlink === 2) continue;
            if ((await this.lstatQuiet(join(p, LOCKED))) === undefined) continue;
            if (await this.unlock(name, true)) result.brokenLocks++;
          } catch (err) {
            warnings.failed(p, err);
          }
        }
      }
    }
    return result;
  }

  private async lstatQuiet(path: string): Promise<fs.Stats | undefined> {
    try {
      return await this.io.lstat(path);
    } catch (err) {
      if ((err as FileSystemError).errno === 'ENOENT') return undefined;
      throw err;
    }
  }
}
