import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';

// The agent (queue -> queue, remove, journal) is killed with SIGKILL at random moments and restarted:
// every message must arrive, the restarted agent must take over the dead one's locks at once (no
// 600 s wait for the stale-lock purge), and duplicates stay within the window per kill.
const DIST = resolve(__dirname, '../dist/core');
const WINDOW = 20;

const AGENT = `
const { runPipeline } = require(process.argv[1] + '/pipeline.js');
const { QueueIncoming, QueueOutgoing } = require(process.argv[1] + '/queues.js');
const { DQS } = require(process.argv[2]);
const [src, dst, journal] = process.argv.slice(3);
const ac = new AbortController();
process.on('SIGTERM', () => ac.abort());
process.stdout.write('ready\\n');
runPipeline(new QueueIncoming(new DQS(src), { remove: true, journal }), new QueueOutgoing(new DQS(dst, { fsync: true })), {
  window: ${WINDOW}, timeoutInactivity: 1, idleInterval: 5, signal: ac.signal,
}).then((s) => { process.stdout.write(JSON.stringify(s) + '\\n'); }, (e) => { console.error(e); process.exit(1); });
`;

function run(args: string[]): { child: ChildProcess; ready: Promise<void>; exit: Promise<number | null>; out: () => string } {
  const child = spawn(process.execPath, ['-e', AGENT, DIST, resolve(__dirname, '../../message/dist'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const ready = new Promise<void>((r) => child.stdout?.once('data', () => r()));
  child.stdout?.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, ready, exit, out: () => out };
}

test('agent crash - SIGKILL at random moments of a queue -> queue transfer: nothing lost, locks taken over at once', async () => {
  expect(fs.existsSync(join(DIST, 'pipeline.js'))).toBe(true);
  const tmp = tempDir('agent-crash-');
  try {
    const src = new DQS(join(tmp, 'src'));
    const N = 3000;
    await src.addMany(
      Array.from({ length: N }, (_, i) => new Message({ header: { seq: String(i) }, body: `m${i}` }).serialize()),
    );
    const journal = join(tmp, 'src.journal');
    const kills = 6;
    for (let k = 0; k < kills; k++) {
      const a = run([src.path, join(tmp, 'dst'), journal]);
      await a.ready;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 250));
      a.child.kill('SIGKILL');
      await a.exit;
    }
    // The last run finishes the job; it must not wait for stale locks to age.
    const t0 = Date.now();
    const last = run([src.path, join(tmp, 'dst'), journal]);
    expect(await last.exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(await src.count()).toBe(0);
    const dst = new DQS(join(tmp, 'dst'));
    const seen = new Map<string, number>();
    for await (const name of dst) {
      await dst.lock(name);
      const seq = (await dst.getMessage(name)).getHeader('seq') as string;
      seen.set(seq, (seen.get(seq) ?? 0) + 1);
    }
    expect(seen.size).toBe(N);
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    expect(duplicates).toBeLessThanOrEqual(WINDOW * kills);
  } finally {
    removeDir(tmp);
  }
}, 180_000);
