// Runs the built commands as a user does (node bin/...), collecting their output.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

const BIN = path.join(__dirname, '..', 'bin');

export interface Running {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  /** Waits until stdout or stderr matches, at most `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

export function start(command: 'msgnotify' | 'msgnotify-gateway', args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const child = spawn(process.execPath, [path.join(BIN, `${command}.js`), ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Running = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))),
    async waitFor(re, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!re.test(r.stdout) && !re.test(r.stderr)) {
        if (child.exitCode !== null)
          throw new Error(`${command} exited ${child.exitCode} before ${re}:\n${r.stdout}\n${r.stderr}`);
        if (Date.now() > deadline) throw new Error(`${command}: no ${re} within ${ms} ms:\n${r.stdout}\n${r.stderr}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
  };
  child.stdout?.on('data', (c: Buffer) => {
    r.stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    r.stderr += c.toString();
  });
  return r;
}

/** Runs to the end: exit code and output. */
export async function run(
  command: 'msgnotify' | 'msgnotify-gateway',
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = start(command, args, env);
  const code = await r.exited;
  return { code, stdout: r.stdout, stderr: r.stderr };
}
