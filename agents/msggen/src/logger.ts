import { once } from 'node:events';

/** The only place the command writes: results on stdout, messages on stderr. */

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  // `msggen ... | head`: the reader left; what it did not read nobody wants.
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

/** Writes one result line, waiting for the pipe to drain. */
export async function outLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
}

export function outJson(value: unknown): Promise<void> {
  return outLine(JSON.stringify(value));
}

/** One line on stderr, prefixed `msggen: `; embedded newlines are folded so an error is always one line. */
export function message(text: string): void {
  process.stderr.write(`msggen: ${text.replace(/\s*\n\s*/g, ' ')}\n`);
}

/** Multi-line diagnostics (stack traces with MSGGEN_DEBUG=1). */
export function debug(text: string): void {
  process.stderr.write(`${text}\n`);
}
