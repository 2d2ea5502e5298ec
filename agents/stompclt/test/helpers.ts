import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { DQN, DQS, Message } from '@msgbricks/message';
import { tempDir as makeTempDir, useTempDir as useTempDirEach } from '@msgbricks/test-support';

/** The built command, as users run it: `npm test` (or `npx tsc -b`) builds it first. */
export const CLI = join(__dirname, '..', 'dist', 'main.js');

export function checkBuilt(cli = CLI): void {
  if (!fs.existsSync(cli)) throw new Error(`${cli} missing: run npx tsc -b first`);
}

export const tempDir = (): string => makeTempDir('stompclt-test-');

/** For a test file: checks the command is built, and gives each test a fresh temporary directory (`dir.path`). */
export function useTempDir(): { readonly path: string } {
  beforeAll(checkBuilt);
  return useTempDirEach('stompclt-test-');
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
  /** What it wrote on stderr so far (its log), for waiting on a log line while it runs. */
  err: () => string;
}

/** The built amqpclt (agents/amqpclt), for the tests that run both commands. */
export const AMQPCLT = join(__dirname, '..', '..', 'amqpclt', 'dist', 'main.js');

/**
 * Starts the command (stompclt unless `cli` says otherwise) in the background; `done` resolves when it exits. With
 * `prefix`, through that command (`setpriv ...`, `unshare ...`), which ends by running it.
 */
export function start(args: string[], cwd: string, cli = CLI, prefix: readonly string[] = []): Running {
  const [cmd, ...rest] = [...prefix, process.execPath, cli, ...args] as [string, ...string[]];
  const child = spawn(cmd, rest, { cwd, env: { ...process.env, STOMPCLT_DEBUG: '', AMQPCLT_DEBUG: '' } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const done = new Promise<Result>((resolve) => child.on('close', (status) => resolve({ status, out, err })));
  return { child, done, err: () => err };
}

/** Runs the built command to its end in the background (a test's own fake peer keeps running), killed after `ms`. */
export async function runToEnd(args: string[], cwd: string, ms = 180_000): Promise<Result> {
  const r = start(args, cwd);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), ms);
  try {
    return await r.done;
  } finally {
    clearTimeout(timer);
  }
}

/** runToEnd, and an exit status other than 0 fails the test with the command's stderr. */
export async function runOk(args: string[], cwd: string, ms = 180_000): Promise<Result> {
  const done = await runToEnd(args, cwd, ms);
  if (done.status !== 0) throw new Error(`stompclt exited ${done.status}:\n${done.err}`);
  return done;
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const linesMatching = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

/**
 * Restarts `broker` twice while a sender (queue -> broker) and a receiver (broker -> `spoolOut`) run: first once both
 * are connected and messages arrive, then again once both logged their reconnection and messages arrive again, so
 * every restart hits a transfer in progress whatever the machine's load (a fixed delay once restarted the broker
 * before the agents' first connection, which is a single attempt for a plain URI). Returns each restart's duration.
 */
export async function restartTwiceDuringTransfer(
  broker: { restart(): Promise<void> },
  sender: Running,
  receiver: Running,
  spoolOut: string,
): Promise<number[]> {
  const arrived = async () => (fs.existsSync(spoolOut) ? await new DQS(spoolOut).count() : 0);
  const flowing = async (what: string, since: number) =>
    waitFor(`${what}, then messages in the receiver spool`, async () => (await arrived()) > since, 120_000);
  await waitFor(
    'both agents connected to the broker',
    () =>
      linesMatching(sender.err(), /connected to the broker/) >= 1 &&
      linesMatching(receiver.err(), /connected to the broker/) >= 1,
    120_000,
  );
  await flowing('both agents connected', 0);
  const took: number[] = [];
  for (let k = 1; k <= 2; k++) {
    const t0 = Date.now();
    await broker.restart();
    took.push(Date.now() - t0);
    await waitFor(
      `both agents back after broker restart ${k}`,
      () =>
        linesMatching(sender.err(), /broker connection back/) >= k &&
        linesMatching(receiver.err(), /broker connection back/) >= k,
      120_000,
    );
    await flowing(`both agents back after broker restart ${k}`, await arrived());
  }
  return took;
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

// A real full file system: a small tmpfs, mounted in a private mount namespace (as root `unshare -m`, otherwise an
// unprivileged user namespace), so nothing on the host is mounted and nothing needs cleaning up when it ends.
const DRIVER = join(__dirname, 'fixtures', 'full-disk.js');

/** A message of a spool on the tmpfs, as the driver reports it (the body in base64). */
export interface DriverMessage {
  header: Record<string, string>;
  body: string;
}

/** Runs the full-disk driver (fixtures/full-disk.js) in a private mount namespace; resolves to the JSON it printed. */
export function inNamespace(args: string[]): Promise<{ result: Record<string, unknown>; stderr: string }> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const child = spawn('unshare', [...(root ? ['-m'] : ['-Urm']), process.execPath, DRIVER, ...args], {
    env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', '..', 'node_modules') },
  });
  let out = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot run unshare (util-linux): ${err.message}`)));
    child.on('close', (status) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (line === '') reject(new Error(`no result from the full-disk driver (exit ${status}): ${stderr}`));
      else resolve({ result: JSON.parse(line), stderr });
    });
  });
}

/** A TCP port free on loopback right now (for --metrics-port). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The text a --metrics-port serves at /metrics. */
export function scrapeMetrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
