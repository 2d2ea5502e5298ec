/**
 * A command per message, as msghandle's --exec and megabusclt's `command` action run it (one code, one set of
 * conventions): /bin/sh -c COMMAND, so that it can be a pipeline; nothing of the message is ever part of the command
 * line. The command gets the body on its standard input, the header in the environment (MSG_HEADER_*, see envName)
 * and whole in a JSON file named by $MSG_JSON, the element in $MSG_NAME, the attempt in $MSG_ATTEMPT and whether the
 * body is text in $MSG_TEXT. Its exit status decides: 0 done, 75 (EX_TEMPFAIL) retry later without counting an
 * attempt (RetryLaterError), anything else or a signal a failed attempt (CommandFailedError). When the attempt's
 * signal fires (the runner's time-out, a stop) the command's process group (every stage of a pipeline) gets SIGTERM,
 * then SIGKILL `killAfter` later. The command is over when /bin/sh exits, even if a process it left in the background
 * still holds its output.
 */
import { type StdioOptions, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { errnoOf, errorOf } from '@msgbricks/errors';
import type { Message } from '@msgbricks/message';
import { HandlerError, RetryLaterError } from './errors';
import type { Handler, HandlerContext } from './runner';

/** sysexits.h EX_TEMPFAIL: the command asks for a later attempt, which does not count. */
export const EX_TEMPFAIL = 75;
/** The prefix of the header variables. */
export const HEADER_PREFIX = 'MSG_HEADER_';
/** Default time between the SIGTERM of an aborted command and its SIGKILL. */
export const KILL_AFTER_MS = 5000;

/**
 * The environment variable of header field `name`: `MSG_HEADER_` + the name with ASCII letters upper-cased, digits
 * kept, and every other character (`-`, `.`, `:`, `_`, a space, anything not ASCII) made `_`. `content-type` is
 * MSG_HEADER_CONTENT_TYPE, `x.priority` MSG_HEADER_X_PRIORITY, `été` MSG_HEADER__T_.
 */
export function envName(name: string): string {
  return HEADER_PREFIX + name.replace(/[^A-Za-z0-9]/g, '_').toUpperCase();
}

/**
 * The variables of a header: variable -> value, in header order, each variable once. Two names that map to one
 * variable: the first in header order wins (the $MSG_JSON file has every field as it is). A value with a NUL
 * character cannot be in an environment: it is left out (again, the JSON file has it).
 */
export function headerEnv(header: Iterable<readonly [string, string]>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of header) {
    const name = envName(k);
    if (Object.hasOwn(env, name) || v.includes('\0')) continue;
    env[name] = v;
  }
  return env;
}

/** A command's exit that is a failed attempt: a status other than 0 and 75, or a signal. Code ERR_HANDLER_COMMAND. */
export class CommandFailedError extends HandlerError {
  constructor(
    readonly status: number | null,
    readonly signal: NodeJS.Signals | null,
    /** With `capture`: the end of what the command wrote (stdout and stderr, blanks folded); else ''. */
    readonly output = '',
  ) {
    super(
      'ERR_HANDLER_COMMAND',
      `${signal !== null ? `the command was killed by ${signal}` : `the command exited with status ${status}`}${output === '' ? '' : `: ${output}`}`,
    );
  }
}

export interface CommandOptions {
  /** Variables added to the environment (after process.env and the header's; before MSG_JSON and co.). */
  env?: Readonly<Record<string, string>>;
  /** The command's standard output and error (default: inherited, the caller's own). */
  stdout?: 'inherit' | 'ignore';
  stderr?: 'inherit' | 'ignore';
  /**
   * Keep the last `capture` characters of what the command writes (stdout and stderr, instead of `stdout`/`stderr`)
   * for CommandFailedError's message: for callers that must not print (a library's predefined actions). Default 0.
   */
  capture?: number;
  /** Milliseconds between SIGTERM and SIGKILL once the attempt's signal fired. Default 5000. */
  killAfter?: number;
  /** Where the $MSG_JSON files go: a directory made for this handler under the system's temporary directory. */
  tmpdir?: string;
}

/** A Handler that runs a command per message; close() removes its directory of header files. */
export interface CommandHandler extends Handler {
  close(): void;
}

/**
 * A handler running `command` for each message by the conventions above; the element's name and the attempt come from
 * the context (`name` may be any label: megabusclt passes the plugin's element).
 */
export function commandHandler(command: string, options: CommandOptions = {}): CommandHandler {
  if (typeof command !== 'string' || command.trim() === '') throw new HandlerError('ERR_HANDLER_OPTION', 'command: empty');
  // The directory is made on first use: a handler never called leaves nothing behind.
  let dir: string | undefined;
  let seq = 0;
  const capture = options.capture ?? 0;
  const stdio: StdioOptions =
    capture > 0 ? ['pipe', 'pipe', 'pipe'] : ['pipe', options.stdout ?? 'inherit', options.stderr ?? 'inherit'];
  const killAfter = options.killAfter ?? KILL_AFTER_MS;
  const handler = async (message: Message, context: HandlerContext): Promise<void> => {
    dir ??= fs.mkdtempSync(join(options.tmpdir ?? os.tmpdir(), 'msgbricks-command-'));
    const file = join(dir, `${process.pid}-${++seq}.json`);
    fs.writeFileSync(file, JSON.stringify(message.header), { mode: 0o600 });
    try {
      const env = {
        ...process.env,
        ...headerEnv(message.headerEntries()),
        ...options.env,
        MSG_JSON: file,
        MSG_NAME: context.name,
        MSG_ATTEMPT: String(context.attempt),
        MSG_TEXT: message.text ? '1' : '0',
      };
      await run(command, message, env, context.signal, stdio, killAfter, capture);
    } finally {
      fs.rmSync(file, { force: true });
    }
  };
  const close = (): void => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  };
  return Object.assign(handler, { close });
}

/**
 * How long a command's output may still arrive after it exited: what it wrote just before is in the pipes yet; a
 * process it left behind (a background job, a mail transport delivering) may hold them for ever.
 */
const DRAIN_MS = 100;

/** Signals the command's process group (it leads its own, being spawned detached): the whole pipeline. */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch (err) {
    // RACE: the group may have emptied since; ESRCH is "already gone", which is what the signal was for.
    if (errnoOf(err) !== 'ESRCH') throw err;
  }
}

function run(
  command: string,
  message: Message,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  stdio: StdioOptions,
  killAfter: number,
  capture: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its own process group, so that an abort reaches every stage of a pipeline, not /bin/sh alone.
    const child = spawn('/bin/sh', ['-c', command], { env, stdio, detached: true });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-capture);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let killer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      killGroup(child.pid, 'SIGTERM');
      // Not cleared when /bin/sh exits: a stage that ignores SIGTERM and outlived it still gets the SIGKILL.
      // RACE: the group's id cannot be a new process's before every member of the group is gone.
      killer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), killAfter);
      killer.unref();
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const stdin = child.stdin as NonNullable<typeof child.stdin>;
    // A command that does not read its input closes the pipe early: that is its business, not a failure.
    stdin.on('error', () => undefined);
    stdin.end(message.text ? Buffer.from(message.body as string, 'utf8') : (message.body as Buffer));
    let settled = false;
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      clearTimeout(killer);
      reject(errorOf(err));
    });
    // The command is over when /bin/sh exits, not when the last holder of its output does ('close').
    child.on('exit', (status, sig) => {
      signal.removeEventListener('abort', onAbort);
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(drain);
        child.stdout?.destroy();
        child.stderr?.destroy();
        if (status === 0) resolve();
        else if (status === EX_TEMPFAIL) reject(new RetryLaterError('the command exited with status 75 (EX_TEMPFAIL)'));
        else reject(new CommandFailedError(status, sig, output.trim().replace(/\s+/g, ' ')));
      };
      const drain = setTimeout(finish, DRAIN_MS);
      child.on('close', finish);
    });
  });
}
