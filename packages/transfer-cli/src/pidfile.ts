/**
 * stompclt's pid file (No::Worries::PidFile): the first line is the pid, an optional second line an
 * action (`quit`). The running instance touches the file and reads the action regularly; `--status`
 * judges liveness from the pid and the file's freshness, `--quit` writes the action and waits.
 */
import * as fs from 'node:fs';
import { AlreadyRunningError } from './errors';
import { isAlive } from './lock';

/** Seconds after which a pid file nobody touched means a stuck instance (stompclt's PIDFILE_FRESHNESS). */
export const PIDFILE_FRESHNESS = 60;

interface PidFileContents {
  pid: number | undefined;
  action: string | undefined;
  mtimeMs: number;
}

function readPidFile(path: string): PidFileContents | undefined {
  let text: string;
  let mtimeMs: number;
  try {
    text = fs.readFileSync(path, 'utf8');
    mtimeMs = fs.statSync(path).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const [first = '', second = ''] = text.split('\n');
  const n = Number.parseInt(first.trim(), 10);
  return {
    pid: Number.isSafeInteger(n) && n > 0 ? n : undefined,
    action: second.trim() === '' ? undefined : second.trim(),
    mtimeMs,
  };
}

/** The pid file of the running instance. */
export class PidFile {
  constructor(readonly path: string) {}

  /** Writes our pid; refuses when the file names another live process. */
  create(): void {
    const cur = readPidFile(this.path);
    if (cur?.pid !== undefined && cur.pid !== process.pid && isAlive(cur.pid))
      throw new AlreadyRunningError(`pid file ${this.path} belongs to a running process (pid ${cur.pid})`);
    const tmp = `${this.path}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${process.pid}\n`);
    fs.renameSync(tmp, this.path);
  }

  /** Touches the file (liveness) and returns the action asked for, if any. */
  check(): string | undefined {
    const cur = readPidFile(this.path);
    if (cur === undefined) return undefined;
    const now = new Date();
    try {
      fs.utimesSync(this.path, now, now);
    } catch {
      // removed meanwhile: nothing to touch
    }
    return cur.action;
  }

  /** Removes the file if it is still ours. */
  remove(): void {
    if (readPidFile(this.path)?.pid === process.pid) fs.rmSync(this.path, { force: true });
  }
}

export interface Report {
  code: number;
  text: string;
}

/** LSB status of the instance of a pid file: 0 running, 1 dead with a pid file, 3 not running, 4 unknown (stuck, unreadable). */
export function status(path: string): Report {
  const cur = readPidFile(path);
  if (cur === undefined) return { code: 3, text: `not running (no pid file ${path})` };
  if (cur.pid === undefined) return { code: 4, text: `unknown: pid file ${path} holds no pid` };
  if (!isAlive(cur.pid)) return { code: 1, text: `dead (pid ${cur.pid}) but pid file ${path} exists` };
  const age = (Date.now() - cur.mtimeMs) / 1000;
  if (age > PIDFILE_FRESHNESS) return { code: 4, text: `stuck? (pid ${cur.pid}): pid file not touched for ${Math.round(age)} s` };
  return { code: 0, text: `running (pid ${cur.pid})` };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** --status with --timeout-status: retries until running or the timeout. */
export async function statusWithRetry(path: string, timeoutSeconds: number | undefined): Promise<Report> {
  const until = Date.now() + (timeoutSeconds ?? 0) * 1000;
  for (;;) {
    const r = status(path);
    if (r.code === 0 || Date.now() >= until) return r;
    await sleep(200);
  }
}

/**
 * --quit: writes the `quit` action, waits up to `waitSeconds` for the process to exit, then kills it
 * (SIGKILL) as stompclt does. 0: stopped (or was not running); 1: had to be killed.
 */
export async function quit(path: string, waitSeconds: number): Promise<Report> {
  const cur = readPidFile(path);
  if (cur?.pid === undefined) return { code: 0, text: `not running (no pid in ${path})` };
  const pid = cur.pid;
  if (!isAlive(pid)) return { code: 0, text: `not running (pid ${pid} is dead)` };
  fs.writeFileSync(path, `${pid}\nquit\n`);
  const until = Date.now() + waitSeconds * 1000;
  while (Date.now() < until) {
    if (!isAlive(pid)) return { code: 0, text: `stopped (pid ${pid})` };
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return { code: 0, text: `stopped (pid ${pid})` };
  }
  return { code: 1, text: `killed (pid ${pid}): it did not quit within ${waitSeconds} s` };
}
