import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { DQS, type Message } from '@msgbricks/message';

export const ROOT = resolve(__dirname, '..', '..', '..');
export const MSGHANDLE = join(ROOT, 'agents', 'msghandle', 'bin', 'msghandle.js');

/** The command tests run the built command, which `npm test` builds first. */
export function checkBuilt(): void {
  const main = join(ROOT, 'agents', 'msghandle', 'dist', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} missing: run npx tsc -b first`);
}

export interface Run {
  child: ChildProcess;
  /** Everything written on stderr so far. */
  err(): string;
  done: Promise<{ status: number | null; signal: NodeJS.Signals | null; err: string; out: string }>;
}

/** Starts msghandle (as a user runs it: the bin, node_modules/.bin on the PATH). */
export function msghandle(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [MSGHANDLE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  let out = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; err: string; out: string }>(
    (resolve, reject) => {
      child.on('error', reject);
      child.on('close', (status, signal) => resolve({ status, signal, err, out }));
    },
  );
  return { child, err: () => err, done };
}

export async function fill(path: string, messages: Message[]): Promise<DQS> {
  const q = new DQS(path);
  for (const m of messages) await q.addMessage(m);
  return q;
}

export async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every message of a spool (removed). */
export async function drain(q: DQS): Promise<Message[]> {
  const out: Message[] = [];
  for await (const n of q) out.push(await q.dequeueMessage(n));
  return out;
}

/** The files of a spool, directories left out. */
export function filesOf(path: string): string[] {
  if (!fs.existsSync(path)) return [];
  return fs.readdirSync(path, { recursive: true, encoding: 'utf8' }).filter((p) => fs.statSync(join(path, p)).isFile());
}
