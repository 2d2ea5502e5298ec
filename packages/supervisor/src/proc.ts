/** Processes: commands run to completion under a time limit, process groups signalled, the process table searched. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { errnoOf } from '@msgbricks/errors';

/** Signals a whole process group (the child was spawned detached, so it leads its own); false when it is gone. */
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    // RACE: the group may have emptied since we looked; ESRCH is "already gone", which is what we wanted.
    if (errnoOf(err) === 'ESRCH') return false;
    throw err;
  }
}

export interface CommandResult {
  /** The exit code; undefined when killed at the time limit or unable to start. */
  readonly code: number | undefined;
  readonly output: string;
  readonly timedOut: boolean;
}

export function envWithPath(searchPath: string | undefined, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...(searchPath === undefined ? {} : { PATH: searchPath }), ...extra };
}

/**
 * Runs a command (no shell) and resolves on its exit, not on the close of its output: an init script's daemon keeps
 * the pipes open forever. Killed with its process group after `timeoutS`.
 */
export function runCommand(argv: readonly string[], timeoutS: number, searchPath: string | undefined): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: envWithPath(searchPath) });
    let output = '';
    const take = (b: Buffer) => {
      if (output.length < 4096) output += b.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, timeoutS * 1000);
    const done = (code: number | undefined) => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code: timedOut ? undefined : code, output: output.trim(), timedOut });
    };
    child.on('error', (err) => {
      output = `cannot run ${cmd}: ${errnoOf(err) ?? err.message}`;
      done(undefined);
    });
    child.on('exit', (code) => done(code ?? undefined));
  });
}

/** Pids whose command line (arguments joined by blanks) matches `pattern` (simplevisor's pattern lookup, Linux only). */
export function findProcesses(pattern: string): number[] {
  const re = new RegExp(pattern);
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      // RACE: the process exited between readdir and read; it is not running, so it does not match.
      continue;
    }
    const line = cmdline.replace(/\0+$/, '').split('\0').join(' ');
    if (line !== '' && re.test(line)) found.push(pid);
  }
  return found;
}

/** Whether a pid is a live process: it exists (signal 0) and is not a zombie waiting for a parent to reap it. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
  try {
    // N.B. a daemon's parent is init, which in a container may never reap it: a dead daemon stays a zombie.
    // The command name (field 2) may itself hold ") ": the state is the field after its last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    // RACE: it went away between the signal and the read.
    return false;
  }
}

/**
 * A live process's identity: its start time (clock ticks since boot, /proc/PID/stat field 22) and process group.
 * undefined when it is gone or a zombie. A pid and its start time together name one process: a pid reused since
 * has another start time.
 */
export function processIdentity(pid: number): { start: string; pgid: number } | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // RACE: gone between whoever gave us the pid and this read: not running, which is the answer.
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold blanks: the fields after its last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X' || fields[19] === undefined) return undefined;
  return { start: fields[19], pgid: Number(fields[2]) };
}

/** Polls until the process `pid` started at `start` is gone; false when it is still there after `ms`. */
export async function waitGone(pid: number, start: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (processIdentity(pid)?.start === start) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
