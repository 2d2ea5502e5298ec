/**
 * spool-examples/deployment end to end, as run.sh starts it, against a private RabbitMQ (@msgbricks/test-support):
 * producer -> spool -> stompclt sender -> RabbitMQ -> stompclt receiver -> spool -> handler, all under msgsupervise.
 * Midway the sender is killed with SIGKILL (the supervisor must have it running again within a second) and later
 * RabbitMQ is restarted; every one of the 10,000 messages must reach the handler (duplicates allowed: at least once).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';

jest.setTimeout(300_000);

const ROOT = path.resolve(__dirname, '../../..');
const RUN = path.join(ROOT, 'spool-examples/deployment/run.sh');
const CLI = path.join(ROOT, 'agents/supervise/bin/msgsupervise.js');
const COUNT = 10_000;

let rabbit: Broker;
let work: string;
let run: ChildProcess | undefined;

beforeAll(async () => {
  rabbit = await brokers.startRabbitMQ();
  work = brokers.tempDir('msgbricks-deployment-');
});

afterAll(async () => {
  if (run !== undefined && run.exitCode === null) {
    // The whole group: run.sh and the supervisor (which stops the agents); KILL if that hangs.
    process.kill(-(run.pid as number), 'SIGTERM');
    const kill = setTimeout(() => process.kill(-(run?.pid as number), 'SIGKILL'), 30_000);
    await new Promise((r) => run?.once('exit', r));
    clearTimeout(kill);
  }
  await rabbit?.stop();
  brokers.removeDir(work);
});

interface Status {
  children: { path: string; pid?: number; state: string; restarts: number; since: number }[];
}

function status(): Status | undefined {
  const r = spawnSync(process.execPath, [CLI, '--conf', path.join(work, 'supervise.conf'), 'status', '--json'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? (JSON.parse(r.stdout) as Status) : undefined;
}

function handled(): string[] {
  try {
    return fs.readFileSync(path.join(work, 'handled.txt'), 'utf8').split('\n').slice(0, -1);
  } catch {
    return [];
  }
}

/** Elements (14 hex digits) left in a DQS spool: its bucket directories listed raw. */
function elements(spool: string): string[] {
  return fs
    .readdirSync(spool)
    .filter((d) => /^[0-9a-f]{8}$/.test(d))
    .flatMap((d) => fs.readdirSync(path.join(spool, d)).filter((f) => /^[0-9a-f]{14}$/.test(f)));
}

async function until<T>(what: string, f: () => T | undefined | false, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}; handled ${handled().length}; status ${JSON.stringify(status())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('deployment - 10,000 messages end to end under msgsupervise, sender SIGKILLed and RabbitMQ restarted midway: nothing lost', async () => {
  const [httpPort] = await brokers.freePorts(1);
  let out = '';
  run = spawn('sh', [RUN], {
    env: {
      ...process.env,
      WORK: work,
      COUNT: String(COUNT),
      RATE: '1000',
      HTTP_PORT: String(httpPort),
      BROKER_HOST: rabbit.host,
      BROKER_STOMP_PORT: String(rabbit.ports.stomp),
      BROKER_USER: rabbit.user,
      BROKER_PASSWORD: rabbit.password,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  run.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
  });
  run.stderr?.on('data', (b: Buffer) => {
    out += b.toString();
  });

  await until('2,000 handled', () => handled().length >= 2000, 120_000);
  const sender = (await until('status', () => status(), 10_000)).children.find((c) => c.path === 'site/sender');
  expect(sender?.state).toBe('running');
  const killed = Date.now();
  process.kill(sender?.pid as number, 'SIGKILL');
  const again = await until(
    'sender running again',
    () => {
      const s = status()?.children.find((c) => c.path === 'site/sender');
      return s !== undefined && s.state === 'running' && s.pid !== sender?.pid ? s : undefined;
    },
    10_000,
  );
  // `since` is when the supervisor saw the new sender running (its clock is this host's).
  expect(again.since - killed).toBeLessThan(1000);
  expect(again.restarts).toBe(1);

  await until('5,000 handled', () => handled().length >= 5000, 120_000);
  await rabbit.restart();

  const seqs = await until(
    'every message handled',
    () => {
      const h = handled();
      const distinct = new Set(h);
      return distinct.size >= COUNT ? distinct : undefined;
    },
    180_000,
  );
  expect([...seqs].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  await until(
    'spools empty',
    () => elements(path.join(work, 'outgoing')).length === 0 && elements(path.join(work, 'incoming')).length === 0,
    30_000,
  );
  // Duplicates are allowed (at least once), but bounded: a window of the sender plus the receiver's prefetch per fault.
  expect(handled().length - COUNT).toBeLessThan(1000);

  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  expect(metrics).toContain('msgsupervise_restarts_total{path="site/sender"} 1');

  const stop = spawnSync(process.execPath, [CLI, '--conf', path.join(work, 'supervise.conf'), 'stop'], { encoding: 'utf8' });
  expect(stop.status).toBe(0);
  const code = await new Promise((r) => run?.once('exit', r));
  expect({ code, out }).toMatchObject({ code: 0 });
  expect(fs.readdirSync(path.join(work, 'log')).sort()).toEqual([
    'site.handler.log',
    'site.producer.log',
    'site.receiver.log',
    'site.sender.log',
  ]);
});
