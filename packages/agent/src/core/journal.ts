import * as fs from 'node:fs';

/**
 * A record of the elements one agent instance holds locked, so that its
 * successor can unlock them at once after a crash instead of waiting for the
 * stale-lock purge (600 s by default). An entry is written just before the
 * lock is attempted and withdrawn if the attempt fails (see
 * QueueIncoming.tryLock), so no lock of ours can be missing from it.
 */
export class LockJournal {
  private fd: number | undefined;
  private readonly held = new Set<string>();
  private entries = 0;

  constructor(readonly path: string) {}

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
    this.fd = fs.openSync(this.path, 'w', 0o644);
    return [...held];
  }

  taken(name: string): void {
    this.held.add(name);
    this.write(`+${name}\n`);
  }

  dropped(name: string): void {
    if (this.held.delete(name)) this.write(`-${name}\n`);
  }

  private write(line: string): void {
    if (this.fd === undefined) return;
    fs.writeSync(this.fd, line);
    // Rewrite it from what is held now once it has grown, so it stays small.
    if (++this.entries >= 100_000) {
      this.entries = this.held.size;
      fs.ftruncateSync(this.fd, 0);
      fs.writeSync(this.fd, [...this.held].map((n) => `+${n}\n`).join(''), 0);
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
