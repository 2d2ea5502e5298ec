import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { DQN, DQS, Message } from '@msgbricks/message';

/** The built command, as users run it: `npm test` (or `npx tsc -b`) builds it first. */
export const CLI = join(__dirname, '..', 'dist', 'main.js');

export function checkBuilt(cli = CLI): void {
  if (!fs.existsSync(cli)) throw new Error(`${cli} missing: run npx tsc -b first`);
}

export function tempDir(): string {
  return fs.mkdtempSync(`${os.tmpdir()}/stompclt-test-`);
}

/** For a test file: checks the command is built, and gives each test a fresh temporary directory (`dir.path`). */
export function useTempDir(): { path: string } {
  const dir = { path: '' };
  beforeAll(checkBuilt);
  beforeEach(() => {
    dir.path = tempDir();
  });
  afterEach(() => {
    fs.rmSync(dir.path, { recursive: true, force: true });
  });
  return dir;
}

export interface Result {
  status: number | null;
  out: string;
  err: string;
}

export function stompclt(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    input: '',
    env: { ...process.env, STOMPCLT_DEBUG: '', ...env },
    timeout: 30000,
  });
  return { status: r.status, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

export interface Running {
  child: ChildProcess;
  done: Promise<Result>;
}

/** The built amqpclt (agents/amqpclt), for the tests that run both commands. */
export const AMQPCLT = join(__dirname, '..', '..', 'amqpclt', 'dist', 'main.js');

/** Starts the command (stompclt unless `cli` says otherwise) in the background; `done` resolves when it exits. */
export function start(args: string[], cwd: string, cli = CLI): Running {
  const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, STOMPCLT_DEBUG: '', AMQPCLT_DEBUG: '' } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const done = new Promise<Result>((resolve) => child.on('close', (status) => resolve({ status, out, err })));
  return { child, done };
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Fills a DQS queue with messages whose bodies are `prefix-0` ... and header `n`. */
export async function fill(path: string, n: number, prefix = 'msg'): Promise<string[]> {
  const q = new DQS(path);
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = `${prefix}-${i}`;
    await q.addMessage(new Message({ header: { n: String(i) }, body }));
    bodies.push(body);
  }
  return bodies;
}

/** Every message of a queue (DQS or DQN), read under lock and left in place. */
export async function readAll(path: string, type: 'DQS' | 'DQN'): Promise<Message[]> {
  if (!fs.existsSync(path)) return [];
  const q = type === 'DQS' ? new DQS(path) : new DQN(path);
  const out: Message[] = [];
  for await (const name of q) {
    if (!(await q.lock(name))) continue;
    out.push(await q.getMessage(name));
    await q.unlock(name);
  }
  return out;
}

export function bodies(messages: Message[]): string[] {
  return messages.map((m) => m.body.toString()).sort();
}

/** Lock files (`.lck`) left in a queue. */
export function locks(path: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.lck')) found.push(join(dir, e.name));
    }
  };
  if (fs.existsSync(path)) walk(path);
  return found;
}

export function expectUsageError(r: Result, pattern: RegExp): void {
  expect(r.status).toBe(2);
  expect(r.err).toMatch(/^(stompclt: [^\n]+\n)+$/);
  expect(r.err).toMatch(pattern);
  expect(r.err).not.toMatch(/\n\s+at /);
}
