/** The only place megabusclt writes: results on stdout, messages on stderr, one line each. */

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  // `megabusclt check | head`: the reader left; what it did not read nobody wants.
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

/** Writes a result (several lines allowed: a configuration). */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** One line on stderr, prefixed `megabusclt: `; embedded newlines are folded so a message is always one line. */
export function message(text: string): void {
  process.stderr.write(`megabusclt: ${text.replace(/\s*\n\s*/g, ' ')}\n`);
}

/** Lines on stderr as they are: every configuration problem on its own line, stack traces with MEGABUSCLT_DEBUG=1. */
export function lines(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}
