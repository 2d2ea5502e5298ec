import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { runPipeline } from '../src/core/pipeline';
import { QueueIncoming, QueueOutgoing } from '../src/core/queues';

// QueueIncoming's read-ahead (a batch of elements locked and read on a helper thread ahead of the
// pipeline, removals in batches) and QueueOutgoing's off-thread batch writes.

let tmp: string;
beforeEach(() => {
  tmp = tempDir('agent-ra-');
});
afterEach(() => removeDir(tmp));

async function filled(n: number): Promise<DQS> {
  const q = new DQS(join(tmp, 'src'));
  await q.addMany(Array.from({ length: n }, (_, i) => new Message({ header: { seq: String(i) }, body: `m${i}` }).serialize()));
  return q;
}

function files(root: string, suffix: string): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(root).filter((x) => /^[0-9a-f]{8}$/.test(x))) {
    for (const e of fs.readdirSync(join(root, d))) if (e.endsWith(suffix)) out.push(`${d}/${e.slice(0, -suffix.length)}`);
  }
  return out.sort();
}

function journalHeld(path: string): string[] {
  const held = new Set<string>();
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('+')) held.add(line.slice(1));
    else if (line.startsWith('-')) held.delete(line.slice(1));
  }
  return [...held].sort();
}

test('agent read-ahead - delivers in queue order; what was read ahead is locked, journalled, and released on close', async () => {
  const q = await filled(100);
  const journal = join(tmp, 'src.journal');
  const inc = new QueueIncoming(new DQS(q.path), { remove: true, journal, readAhead: 8 });
  await inc.open();
  const d1 = await inc.next();
  const d2 = await inc.next();
  expect(d1?.message.getHeader('seq')).toBe('0');
  expect(d2?.message.getHeader('seq')).toBe('1');
  // Two batches at most are held ahead, and every lock on disk is in the journal.
  const locked = files(q.path, '.lck');
  expect(locked.length).toBeGreaterThanOrEqual(8);
  expect(locked.length).toBeLessThanOrEqual(16);
  expect(journalHeld(journal)).toEqual(locked);
  await inc.ack(d1?.id as string);
  // An ack resolves once the element is gone.
  expect(fs.existsSync(join(q.path, d1?.id as string))).toBe(false);
  expect(fs.existsSync(join(q.path, `${d1?.id}.lck`))).toBe(false);
  expect(journalHeld(journal)).not.toContain(d1?.id);
  await inc.close();
  expect(files(q.path, '.lck')).toEqual([]);
  expect(fs.existsSync(journal)).toBe(false);
  expect(await q.count()).toBe(99);
  // The rest comes in order, the unacked d2 first.
  const rest = new QueueIncoming(new DQS(q.path), { remove: true, readAhead: 8 });
  await rest.open();
  const seqs: string[] = [];
  for (let d = await rest.next(); d; d = await rest.next()) {
    seqs.push(d.message.getHeader('seq') as string);
    await rest.ack(d.id);
  }
  await rest.close();
  expect(seqs).toEqual(Array.from({ length: 99 }, (_, i) => String(i + 1)));
  expect(await q.count()).toBe(0);
});

test('agent read-ahead - skips what another consumer holds', async () => {
  const q = await filled(10);
  const names: string[] = [];
  for await (const n of q) names.push(n);
  const other = new DQS(q.path);
  await other.lock(names[3] as string);
  const inc = new QueueIncoming(new DQS(q.path), { journal: join(tmp, 'j'), readAhead: 4 });
  await inc.open();
  const got: string[] = [];
  for (let d = await inc.next(); d; d = await inc.next()) {
    got.push(d.id);
    await inc.ack(d.id); // no remove: unlocked, stays
  }
  await inc.close();
  expect(got).toEqual(names.filter((_, i) => i !== 3));
  expect(files(q.path, '.lck')).toEqual([names[3]]);
  expect(await q.count()).toBe(10);
});

test('agent read-ahead - readAhead 0 keeps the one-at-a-time path; a negative one is refused', async () => {
  const q = await filled(5);
  const stats = await runPipeline(
    new QueueIncoming(new DQS(q.path), { remove: true, readAhead: 0 }),
    new QueueOutgoing(new DQS(join(tmp, 'dst'))),
  );
  expect(stats.sent).toBe(5);
  expect(await q.count()).toBe(0);
  expect(() => new QueueIncoming(new DQS(q.path), { readAhead: -1 })).toThrow(RangeError);
});

test('agent read-ahead - a pipeline with read-ahead and off-thread writes moves everything once, in order', async () => {
  const q = await filled(500);
  const dst = new DQS(join(tmp, 'dst'), { fsync: true });
  const stats = await runPipeline(
    new QueueIncoming(new DQS(q.path), { remove: true, readAhead: 16 }),
    new QueueOutgoing(dst, { offload: true }),
    {
      window: 50,
    },
  );
  expect(stats.sent).toBe(500);
  expect(await q.count()).toBe(0);
  const seqs: string[] = [];
  for await (const n of dst) {
    await dst.lock(n);
    seqs.push((await dst.getMessage(n)).getHeader('seq') as string);
  }
  expect(seqs).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  expect(files(dst.path, '.tmp')).toEqual([]);
});

// A child holding read-ahead locks is SIGKILLed: every lock on disk must be in its journal, and the
// next instance must release them all at once (no wait for the stale-lock purge).
const DIST = resolve(__dirname, '../dist/core');
const CHILD = `
const { QueueIncoming } = require(process.argv[1] + '/queues.js');
const { DQS } = require(process.argv[2]);
const [src, journal] = process.argv.slice(3);
const inc = new QueueIncoming(new DQS(src), { remove: true, journal, readAhead: 32 });
(async () => {
  await inc.open();
  const d = await inc.next();
  await inc.ack(d.id);
  await inc.next();
  // Let the next batch be read ahead, then wait to be killed.
  setTimeout(() => process.stdout.write('ready\\n'), 200);
  setInterval(() => undefined, 1000);
})();
`;

test('agent read-ahead - crash with read-ahead locks: all in the journal, all released by the next instance', async () => {
  expect(fs.existsSync(join(DIST, 'queues.js'))).toBe(true);
  const q = await filled(200);
  const journal = join(tmp, 'src.journal');
  const child = spawn(process.execPath, ['-e', CHILD, DIST, resolve(__dirname, '../../message/dist'), q.path, journal], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((r) => child.stdout?.once('data', () => r()));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const locked = files(q.path, '.lck');
  // One delivered and acked (removed), one delivered, up to two batches ahead.
  expect(await q.count()).toBe(199);
  expect(locked.length).toBeGreaterThan(32);
  expect(locked.length).toBeLessThanOrEqual(65);
  for (const name of locked) expect(journalHeld(journal)).toContain(name);
  const next = new QueueIncoming(new DQS(q.path), { remove: true, journal, readAhead: 32 });
  await next.open();
  expect(files(q.path, '.lck')).toEqual([]);
  let n = 0;
  for (let d = await next.next(); d; d = await next.next()) {
    await next.ack(d.id);
    n++;
  }
  await next.close();
  expect(n).toBe(199);
  expect(await q.count()).toBe(0);
}, 30_000);
