import * as fs from 'node:fs';
import { join } from 'node:path';
import { QueueSimple } from '@msgbricks/dirq';
import { backdate, removeDir, tempDir } from '@msgbricks/test-support';

// A million-element queue: count, iteration and purge must keep memory bounded and never block the
// event loop for long. The measure is the number of event-loop turns taken while they run (a chain of
// setImmediate): the library yields at every directory or every few milliseconds of work, so there must
// be a turn per directory or per 50 ms of the process' CPU time (ten times the slice), whichever is
// fewer, while a blocking implementation gives one or two turns in all. Not wall-clock time: on a shared
// two-core CI machine the scheduler alone can stall a process for 200 ms. And not turns per directory
// alone (a fast machine purges a directory in less than a slice), nor CPU alone (the CPU time includes
// the garbage collector's threads and the test's own loop over a million names, which grow under load).
const ELEMENTS = 1_000_000;
const DIRS = 100;
const CPU_MS_PER_TURN = 50;

function watchLoop(): { stop: () => { turns: number; maxGapMs: number; cpuMs: number } } {
  let last = performance.now();
  let maxGap = 0;
  let turns = 0;
  let running = true;
  const cpu = process.cpuUsage();
  const turn = (): void => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    turns++;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  return {
    stop: () => {
      running = false;
      const used = process.cpuUsage(cpu);
      return {
        turns,
        maxGapMs: Math.max(maxGap, performance.now() - last),
        cpuMs: (used.user + used.system) / 1000,
      };
    },
  };
}

function expectResponsive(what: string, r: { turns: number; maxGapMs: number; cpuMs: number }): void {
  process.stderr.write(
    `dirq big - ${what}: ${r.turns} event-loop turns in ${r.cpuMs.toFixed(0)} ms of CPU, largest gap ${r.maxGapMs.toFixed(0)} ms\n`,
  );
  // A blocking implementation gives one or two turns, whatever the machine.
  expect(r.turns).toBeGreaterThanOrEqual(5);
  expect(r.turns).toBeGreaterThanOrEqual(Math.min(DIRS, Math.floor(r.cpuMs / CPU_MS_PER_TURN)));
}

describe('dirq big queue', () => {
  const tmp = tempDir('dirq-');
  const path = join(tmp, 'q');
  let stale: string[] = [];

  beforeAll(() => {
    // Hard links to one file per directory (ext4 allows 65000 links per inode) make a million
    // elements in seconds; dirq only sees names.
    fs.mkdirSync(path);
    const per = ELEMENTS / DIRS;
    const seeds: string[] = [];
    for (let d = 0; d < DIRS; d++) {
      const dir = (0x60000000 + d * 60).toString(16).padStart(8, '0');
      const seed = join(tmp, `seed${d}`);
      fs.writeFileSync(seed, 'x');
      seeds.push(seed);
      fs.mkdirSync(join(path, dir));
      for (let i = 0; i < per; i++) {
        const name = (0x60000000 + d * 60).toString(16) + (i % 1000000).toString(16).padStart(5, '0') + (i >> 20).toString(16);
        fs.linkSync(seed, join(path, dir, name));
      }
    }
    // Some stale locks and temporary files for purge to find.
    const dir = (0x60000000).toString(16);
    stale = fs
      .readdirSync(join(path, dir))
      .slice(0, 100)
      .map((n) => join(path, dir, n));
    for (const e of stale) {
      fs.linkSync(e, `${e}.lck`);
      fs.writeFileSync(`${e.slice(0, -1)}f.tmp`, '');
      backdate(`${e.slice(0, -1)}f.tmp`, 1000);
    }
    for (const seed of seeds) backdate(seed, 1000); // elements share their seed's inode: every lock is stale
  }, 600_000);

  afterAll(() => removeDir(tmp));

  test('dirq big - count of a million elements keeps the event loop responsive', async () => {
    const q = new QueueSimple(path);
    const loop = watchLoop();
    expect(await q.count()).toBe(ELEMENTS);
    expectResponsive('count', loop.stop());
  }, 300_000);

  test('dirq big - iterating a million elements: sorted, bounded memory, responsive', async () => {
    const q = new QueueSimple(path);
    global.gc?.();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let n = 0;
    let prev = '';
    let sorted = true;
    const loop = watchLoop();
    for await (const name of q) {
      if (name <= prev) sorted = false;
      prev = name;
      if (++n % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }
    const responsiveness = loop.stop();
    expect(n).toBe(ELEMENTS);
    expect(sorted).toBe(true);
    // One directory's names at a time: far below what a million names (~60 MB as strings) would take.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
    expectResponsive('iteration', responsiveness);
  }, 300_000);

  test('dirq big - purge of a million elements keeps the event loop turning', async () => {
    const q = new QueueSimple(path);
    const loop = watchLoop();
    const r = await q.purge();
    const responsiveness = loop.stop();
    expect(r.brokenLocks).toBe(stale.length);
    expect(r.removedTemporary).toBe(stale.length);
    expectResponsive('purge', responsiveness);
    for (const e of stale) expect(fs.existsSync(`${e}.lck`)).toBe(false);
  }, 300_000);
});
