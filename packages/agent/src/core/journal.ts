import * as fs from 'node:fs';

/**
 * A record of the elements one agent instance holds locked, so that its
 * successor can unlock them at once after a crash instead of waiting for the
 * stale-lock purge (600 s by default). An entry is written just before the
 * lock is attempted (a batch of entries before a batch of locks) and withdrawn
 * if the attempt fails (see QueueIncoming.tryLock and fill), so no lock of
 * ours can be missing from it.
 */
export type LockJournalEvent = { type: 'unwritable'; error: Error } | { type: 'writable' };

/** Errors of a full file system: the journal then stops writing until a rewrite succeeds (see write()). */
const FULL = new Set(['ENOSPC', 'EDQUOT']);

export class LockJournal {
  private fd: number | undefined;
  private readonly held = new Set<string>();
  private entries = 0;
  /** Set while the file system is full: the file lags behind `held`, which stays exact. */
  private unwritable = false;

  /**
   * `onEvent` is told when the journal cannot be written for want of space (a full spool is exactly what an agent
   * must drain, so the journal never stops it: locks taken meanwhile are only missing from the file, and would wait
   * for the stale-lock purge after a crash), and when it can again (it is then rewritten whole from memory).
   */
  constructor(
    readonly path: string,
    private readonly onEvent?: (event: LockJournalEvent) => void,
  ) {}

  /** The names the previous instance held (a file of `+name` / `-name` lines); the journal starts empty. */
  recover(): string[] {
    let text = '';
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const held = new Set<string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('+')) held.add(line.slice(1));
      else if (line.startsWith('-')) held.delete(line.slice(1));
    }
    try {
      this.fd = fs.openSync(this.path, 'w', 0o644);
    } catch (err) {
      if (!this.full(err)) throw err;
      // The old entries must go even so: released now, they could be someone else's locks by the next recovery.
      fs.rmSync(this.path, { force: true });
    }
    return [...held];
  }

  private full(err: unknown): boolean {
    if (!FULL.has(String((err as NodeJS.ErrnoException).code))) return false;
    if (!this.unwritable) this.onEvent?.({ type: 'unwritable', error: err as Error });
    this.unwritable = true;
    return true;
  }

  /** The whole file from memory: what is held now, one line each. */
  private rewrite(): void {
    this.fd ??= fs.openSync(this.path, 'w', 0o644);
    const fd = this.fd;
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, [...this.held].map((n) => `+${n}\n`).join(''), 0);
    this.entries = this.held.size;
  }

  taken(name: string): void {
    this.takenMany([name]);
  }

  dropped(name: string): void {
    this.droppedMany([name]);
  }

  /** Records several names at once: one write() for the lot, before any of them is locked. */
  takenMany(names: readonly string[]): void {
    let text = '';
    for (const name of names) {
      this.held.add(name);
      text += `+${name}\n`;
    }
    this.write(text, names.length);
  }

  /** Withdraws several names (those recorded) with one write(). */
  droppedMany(names: Iterable<string>): void {
    let text = '';
    let n = 0;
    for (const name of names) {
      if (!this.held.delete(name)) continue;
      text += `-${name}\n`;
      n++;
    }
    this.write(text, n);
  }

  private write(text: string, lines: number): void {
    if (lines === 0 || (this.fd === undefined && !this.unwritable)) return;
    try {
      if (this.unwritable) {
        // RACE: the held set already has this batch, so the rewrite records it before its locks are attempted.
        this.rewrite();
        this.unwritable = false;
        this.onEvent?.({ type: 'writable' });
        return;
      }
      // One write() for a batch: the locks are attempted only once it has returned, so a crash in the
      // middle of it (a torn last line, which recover() cannot match) can only lose entries of locks not
      // taken yet. (The journal is about process crashes; after a power cut the locks are as unsure.)
      fs.writeSync(this.fd as number, text); // defined: undefined only while unwritable
      this.entries += lines;
      // Rewrite it from what is held now once it has grown, so it stays small.
      if (this.entries >= 100_000) this.rewrite();
    } catch (err) {
      if (!this.full(err)) throw err;
    }
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
    if (this.held.size === 0) fs.rmSync(this.path, { force: true });
  }
}
