import { once } from 'node:events';

/**
 * The only place the command writes: results on stdout, messages and the
 * progress line on stderr. Messages clear the progress line first, so the
 * two never interleave on a terminal.
 */

let progressShown = false;

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  // `dirq list q | head`: the reader left; what it did not read nobody wants.
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

/** Writes a result chunk, waiting for the pipe to drain so a huge listing does not pile up in memory. */
export async function out(chunk: string | Uint8Array): Promise<void> {
  // On a shared terminal a result written after the progress line would be glued to it; it is redrawn later.
  if (process.stdout.isTTY) clearProgress();
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

export function outLine(line: string): Promise<void> {
  return out(`${line}\n`);
}

export function outJson(value: unknown): Promise<void> {
  return out(`${JSON.stringify(value)}\n`);
}

/** One line on stderr, prefixed `dirq: `; embedded newlines are folded so an error is always one line. */
export function message(text: string): void {
  clearProgress();
  process.stderr.write(`dirq: ${text.replace(/\s*\n\s*/g, ' ')}\n`);
}

/** Multi-line diagnostics (stack traces with DIRQ_DEBUG=1). */
export function debug(text: string): void {
  clearProgress();
  process.stderr.write(`${text}\n`);
}

export function progressEnabled(): boolean {
  return process.stderr.isTTY === true;
}

export function showProgress(line: string): void {
  // A pty without a window size reports 0 columns.
  const width = process.stderr.columns || 80;
  process.stderr.write(`\r${line.slice(0, Math.max(0, width - 1))}\x1b[K`);
  progressShown = true;
}

export function clearProgress(): void {
  if (progressShown) {
    process.stderr.write('\r\x1b[K');
    progressShown = false;
  }
}
