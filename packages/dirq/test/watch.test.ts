import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { Queue, QueueSimple } from '@msgbricks/dirq';
import { useTempDir } from '@msgbricks/test-support';
import { type Watchable, watchQueue } from '../src/watch';

async function take(it: AsyncIterator<string>, n: number, ms = 5000): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const r = await Promise.race([
      it.next(),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))),
    ]);
    if (r === 'timeout' || r.done) break;
    out.push(r.value);
  }
  return out;
}

/**
 * Resolves once the watch's first scan is done: what is added after it is new to the watch. (A fixed delay was
 * shorter than that scan on a loaded machine, and elements added during it counted as already there.)
 */
async function started(it: AsyncIterator<string>): Promise<void> {
  const w = it as unknown as { scanning: Promise<void> | undefined };
  while (w.scanning !== undefined) await w.scanning;
}

describe('dirq watch', () => {
  const tmp = useTempDir('dirq-');

  test('dirq watch - yields new elements of a simple queue quickly, not the ones already there', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'), { granularity: 1 });
    const old = await q.add('old');
    const it = q.watch({ rescanInterval: 60_000 });
    await started(it);
    const t0 = Date.now();
    const added = [await q.add('a'), await q.add('b')];
    const got = await take(it, 2);
    expect(got).toEqual(added);
    expect(got).not.toContain(old);
    // Events, not the (one minute) rescan, delivered them.
    expect(Date.now() - t0).toBeLessThan(5000);
    await it.return?.();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('dirq watch - an element added while the first scan lists is yielded, one named before the watch is not', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'), { granularity: 1 });
    const before = await q.add('before');
    let during: string | undefined;
    // The add lands between watch() and the first scan's listing: the window in which elements were swallowed.
    const racing: Watchable = {
      path: q.path,
      listDirsForWatch: async () => {
        if (during === undefined) during = await q.add('during');
        return q.listDirsForWatch();
      },
      listForWatch: (dir) => q.listForWatch(dir),
    };
    const it = watchQueue(racing, { rescanInterval: 60_000 });
    const got = await take(it, 1);
    expect(got).toEqual([during]);
    expect(got).not.toContain(before);
    expect(await q.count()).toBe(2);
    await it.return?.();
  });

  test('dirq watch - fromStart yields existing elements first', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'));
    const a = await q.add('a');
    const it = q.watch({ fromStart: true });
    expect(await take(it, 1)).toEqual([a]);
    await it.return?.();
  });

  test('dirq watch - the periodic rescan finds what no event announced', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'));
    const it = q.watch({ rescanInterval: 100 });
    await started(it);
    // Simulate a lost event: stop every fs watcher the iterator holds, then add through the file system.
    const watchers = (it as unknown as { watchers: Map<string, fs.FSWatcher> }).watchers;
    for (const w of watchers.values()) w.close();
    watchers.clear();
    fs.mkdirSync(join(q.path, '00000001'));
    fs.writeFileSync(join(q.path, '00000001', '00000001000000'), 'x');
    expect(await take(it, 1, 3000)).toEqual(['00000001/00000001000000']);
    await it.return?.();
  });

  test('dirq watch - works for normal queues and ignores temporary/ work', async () => {
    const q = new Queue(join(tmp.path, 'n'), { schema: { body: 'string' } });
    const it = q.watch({ rescanInterval: 200 });
    await started(it);
    fs.mkdirSync(join(q.path, 'temporary', '0123456789abcd'));
    const name = await q.add({ body: 'x' });
    expect(await take(it, 2, 1000)).toEqual([name]);
    await it.return?.();
  });

  test('dirq watch - an abort signal ends the iteration', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'));
    const ac = new AbortController();
    const seen: string[] = [];
    const it = q.watch({ signal: ac.signal });
    const loop = (async () => {
      for await (const n of it) seen.push(n);
    })();
    await started(it);
    await q.add('x');
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await loop;
    expect(seen).toHaveLength(1);
  });

  test('dirq watch - a removed queue directory surfaces as an error, not a hang', async () => {
    const q = new QueueSimple(join(tmp.path, 'q'));
    const it = q.watch({ rescanInterval: 50 });
    await new Promise((r) => setTimeout(r, 20));
    fs.rmSync(q.path, { recursive: true });
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_DIRQ_SYSCALL', errno: 'ENOENT' });
  });

  test('dirq watch - an open watch keeps the process alive until an element arrives', async () => {
    // Regression: with an unref'd timer, a process whose only work was the watch exited at once.
    const q = new QueueSimple(join(tmp.path, 'q'));
    const script = `const { QueueSimple } = require(process.argv[1]);
      const w = new QueueSimple(process.argv[2]).watch();
      (async () => { while (w.scanning) await w.scanning; console.log('watching'); })();
      (async () => { for await (const n of w) { console.log(n); break; } })();`;
    const child = spawn(process.execPath, ['-e', script, resolve(__dirname, '../dist/index.js'), q.path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    // Added once the child's watch has scanned (its start-up alone takes half a second under load).
    while (!out.includes('watching\n')) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const name = await q.add('x');
    expect(await exited).toBe(0);
    expect(out.trim()).toBe(`watching\n${name}`);
  });
});
