/**
 * The commands the predefined actions run (sendmail, shutdown): `/bin/sh -c LINE` as msghandle runs its --exec, so
 * an operator writes the same kind of line everywhere; the exit status decides (0 done, 75 EX_TEMPFAIL retry later
 * without counting an attempt, anything else a failed attempt). Their output is kept (the end of it) for the error,
 * never printed: a library does not write to the terminal.
 */
import { spawn } from 'node:child_process';
import { RetryLaterError } from '@msgbricks/handler';
import { ScheduleError } from './event';

const EX_TEMPFAIL = 75;
/** After the signal's SIGTERM, the command gets this long before SIGKILL. */
const KILL_AFTER_MS = 5000;
/** The end of the command's output kept for the error message. */
const KEEP = 500;

/** A command that failed: its exit status or signal, and the end of what it wrote. */
export class CommandError extends ScheduleError {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;

  constructor(command: string, status: number | null, signal: NodeJS.Signals | null, output: string) {
    const how = signal !== null ? `was killed by ${signal}` : `exited with status ${status}`;
    super('ERR_SCHEDULE_COMMAND', `${command}: ${how}${output === '' ? '' : `: ${output}`}`);
    this.status = status;
    this.signal = signal;
  }
}

/** Runs `command` with `input` on its standard input; resolves when it exited 0. */
export function runCommand(
  command: string,
  input: string | Buffer,
  options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-KEEP);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let killer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      killer.unref();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // A command that does not read its input closes the pipe early: that is its business, not a failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const done = (): void => {
      options.signal?.removeEventListener('abort', onAbort);
      clearTimeout(killer);
    };
    child.on('error', (err) => {
      done();
      reject(new ScheduleError('ERR_SCHEDULE_COMMAND', `${command}: cannot run /bin/sh: ${err.message}`, { cause: err }));
    });
    child.on('close', (status, signal) => {
      done();
      const tail = output.trim().replace(/\s+/g, ' ');
      if (status === 0) resolve();
      else if (status === EX_TEMPFAIL) reject(new RetryLaterError(`${command}: exited with status 75 (EX_TEMPFAIL)`));
      else reject(new CommandError(command, status, signal, tail));
    });
  });
}
