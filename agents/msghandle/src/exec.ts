/**
 * --exec: a command per message. The body on its standard input, the header in the environment (env.ts) and in a
 * JSON file, and its exit status decides: 0 done, 75 (EX_TEMPFAIL) retry later without counting an attempt, anything
 * else (or a signal) a failed attempt. The command line is run by /bin/sh -c, so that it can be a pipeline; nothing
 * of the message is ever part of it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { errorOf } from '@msgbricks/errors';
import { type Handler, RetryLaterError } from '@msgbricks/handler';
import type { Message } from '@msgbricks/message';
import { headerEnv } from './env';

export const EX_TEMPFAIL = 75;
/** After the time-out's SIGTERM, the command gets this long before SIGKILL. */
const KILL_AFTER_MS = 5000;

/** A command's exit that is a failed attempt. */
export class CommandFailedError extends Error {
  constructor(
    readonly status: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    super(signal !== null ? `the command was killed by ${signal}` : `the command exited with status ${status}`);
    this.name = 'CommandFailedError';
  }
}

/** The directory of the header files of this process (one file per message, removed when its command ends). */
function headerDir(): string {
  return fs.mkdtempSync(join(os.tmpdir(), 'msghandle-'));
}

export interface ExecHandler {
  handler: Handler;
  /** Removes the header files' directory. */
  close(): void;
}

export function execHandler(command: string): ExecHandler {
  const dir = headerDir();
  let seq = 0;
  const handler: Handler = async (message: Message, context) => {
    const file = join(dir, `${process.pid}-${++seq}.json`);
    fs.writeFileSync(file, JSON.stringify(message.header), { mode: 0o600 });
    try {
      await run(
        command,
        message,
        {
          ...process.env,
          ...headerEnv(message.headerEntries()),
          MSG_JSON: file,
          MSG_NAME: context.name,
          MSG_ATTEMPT: String(context.attempt),
          MSG_TEXT: message.text ? '1' : '0',
        },
        context.signal,
      );
    } finally {
      fs.rmSync(file, { force: true });
    }
  };
  return { handler, close: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

function run(command: string, message: Message, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['pipe', 'inherit', 'inherit'] });
    let killer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      killer.unref();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // A command that does not read its input closes the pipe early: that is its business, not a failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(message.text ? Buffer.from(message.body as string, 'utf8') : (message.body as Buffer));
    child.on('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(errorOf(err));
    });
    child.on('close', (status, sig) => {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(killer);
      if (status === 0) resolve();
      else if (status === EX_TEMPFAIL) reject(new RetryLaterError('the command exited with status 75 (EX_TEMPFAIL)'));
      else reject(new CommandFailedError(status, sig));
    });
  });
}
