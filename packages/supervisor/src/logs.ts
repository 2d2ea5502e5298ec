/**
 * A child's output captured into a size-rotated log file: `NAME.log`, then `NAME.log.1` (the newest old one) up to
 * `NAME.log.KEEP`. The supervisor is the only writer and holds the child's end of the pipe, so rotation loses
 * nothing: bytes the child writes while the files are renamed wait in the pipe, and a file only ever ends on a
 * whole line (a line longer than the limit is written whole, then the file rotates).
 */
import * as fs from 'node:fs';
import { errnoOf, MsgbricksError } from '@msgbricks/errors';

export class LogError extends MsgbricksError {
  constructor(syscall: string, file: string, cause: unknown) {
    super('ERR_SUPERVISE_LOG', `cannot ${syscall}(${file}): ${errnoOf(cause) ?? String(cause)}`, { cause });
  }
}

export interface RotatingLogOptions {
  /** Rotate once the file reaches this many bytes. */
  maxSize: number;
  /** Old files kept. */
  keep: number;
}

export class RotatingLog {
  private fd: number | undefined;
  private size = 0;
  /** The unfinished last line of each source (stdout and stderr are separate pipes: their lines must not mix). */
  private readonly partial = new Map<string, Buffer>();
  rotations = 0;

  constructor(
    private name: string,
    private options: RotatingLogOptions,
  ) {
    this.open();
  }

  get file(): string {
    return this.name;
  }

  /**
   * Writes to `file` from now on, with `options` (a reload moved or resized the log). The unfinished lines follow:
   * a line is not split between the two files.
   */
  retarget(file: string, options: RotatingLogOptions): void {
    this.options = options;
    if (file === this.name) return;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    this.name = file;
    this.open();
  }

  private open(): void {
    try {
      this.fd = fs.openSync(this.file, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    } catch (err) {
      throw new LogError('open', this.file, err);
    }
  }

  /** Appends the whole lines of `chunk` from `source`; the rest waits for its end of line (or `flush`). */
  write(source: string, chunk: Buffer): void {
    const before = this.partial.get(source);
    const data = before === undefined ? chunk : Buffer.concat([before, chunk]);
    const end = data.lastIndexOf(0x0a);
    if (end < 0) {
      this.partial.set(source, data);
      return;
    }
    this.partial.delete(source);
    if (end + 1 < data.length) this.partial.set(source, data.subarray(end + 1));
    this.append(data.subarray(0, end + 1));
  }

  /** Writes what is left of unfinished lines (the child has exited), each ended by a newline. */
  flush(): void {
    for (const [source, rest] of this.partial) {
      this.partial.delete(source);
      this.append(Buffer.concat([rest, Buffer.from('\n')]));
    }
  }

  private append(lines: Buffer): void {
    let off = 0;
    while (off < lines.length) {
      const room = this.options.maxSize - this.size;
      if (lines.length - off <= room) {
        this.writeAll(lines.subarray(off));
        break;
      }
      const cut = room > 0 ? lines.lastIndexOf(0x0a, off + room - 1) : -1;
      if (cut >= off) {
        this.writeAll(lines.subarray(off, cut + 1));
        off = cut + 1;
      } else if (this.size === 0) {
        // One line longer than a whole file: written whole, never split.
        const eol = lines.indexOf(0x0a, off);
        this.writeAll(lines.subarray(off, eol + 1));
        off = eol + 1;
      }
      this.rotate();
    }
    if (this.size >= this.options.maxSize) this.rotate();
  }

  private writeAll(buf: Buffer): void {
    let done = 0;
    while (done < buf.length) {
      try {
        done += fs.writeSync(this.fd as number, buf, done);
      } catch (err) {
        if (errnoOf(err) === 'EAGAIN') continue;
        throw new LogError('write', this.file, err);
      }
    }
    this.size += buf.length;
  }

  /** NAME.log.(K-1) -> NAME.log.K, ..., NAME.log -> NAME.log.1, then a new NAME.log. */
  rotate(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    for (let i = this.options.keep - 1; i >= 1; i--) {
      try {
        fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      } catch (err) {
        // RACE: nothing else writes these names; ENOENT only means fewer old files than `keep` so far.
        if (errnoOf(err) !== 'ENOENT') throw new LogError('rename', `${this.file}.${i}`, err);
      }
    }
    try {
      fs.renameSync(this.file, `${this.file}.1`);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw new LogError('rename', this.file, err);
    }
    this.rotations++;
    this.open();
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
