import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, loadConfig, Supervision, single } from '@msgbricks/supervisor';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { waitFor, writeFiles } from './helpers';

// LSB services are real init scripts and daemons; their careful start polls every 0.5 s.
jest.setTimeout(60_000);

const dir = { path: '' };

beforeEach(() => {
  dir.path = tempDir('supervise-single-');
});

afterEach(() => {
  for (const f of fs.readdirSync(dir.path).filter((n) => n.endsWith('.pid'))) {
    const pid = Number(fs.readFileSync(path.join(dir.path, f), 'utf8'));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  removeDir(dir.path);
});

/** An init script for service `name`: its daemon's pid in dir/NAME.pid, LSB status 0 or 3. */
function lsb(name: string): string {
  const pidfile = path.join(dir.path, `${name}.pid`);
  writeFiles(dir.path, {
    [`${name}.sh`]: `#!/bin/sh
case "$1" in
start) sleep 1000 >/dev/null 2>&1 & echo $! > ${pidfile} ;;
stop) [ -f ${pidfile} ] && kill $(cat ${pidfile}); rm -f ${pidfile} ;;
status) [ -f ${pidfile} ] && kill -0 $(cat ${pidfile}) 2>/dev/null && exit 0; exit 3 ;;
esac
`,
  });
  return `<entry>\ntype = service\nname = ${name}\ncontrol = ${path.join(dir.path, `${name}.sh`)}\n</entry>\n`;
}

const pidOf = (name: string): number | undefined => {
  try {
    return Number(fs.readFileSync(path.join(dir.path, `${name}.pid`), 'utf8'));
  } catch {
    return undefined;
  }
};

async function killDaemon(name: string): Promise<void> {
  const pid = pidOf(name) as number;
  process.kill(pid, 'SIGKILL');
  // Gone from the process table, not only dead: until its zombie is reaped, the init script's `kill -0` succeeds.
  await waitFor(`${name} reaped`, () => !fs.existsSync(`/proc/${pid}`));
}

/** A fresh run, as cron starts one: the configuration read, one cycle. */
function run(text: string, now?: number) {
  const file = writeFiles(dir.path, { 'supervise.conf': text });
  return single(new Supervision(loadConfig(file)), now);
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const readStore = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;

describe('supervise single', () => {
  test('single - the store carries intensity across runs: the root gives up, is held down, then starts afresh', async () => {
    const store = path.join(dir.path, 'store.json');
    const text = `<simplevisor>\nstore = ${store}\nhold_down = 60\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nwindow = 12\nadjustments = 2\n<children>\n${lsb('a')}</children>\n</entry>\n`;
    expect(await run(text)).toEqual({ ok: true, lines: ['top/a: status 3, started'] });
    const first = readStore(store)[md5('top')];
    expect(first).toMatchObject({ name: 'top', restarts: [], children: {} });
    expect(first?.cycles).toEqual([[expect.any(Number), true]]);
    expect(await run(text)).toEqual({ ok: true, lines: ['top/a: OK, as expected (status 0)'] });
    await killDaemon('a');
    expect((await run(text)).lines).toEqual(['top/a: status 3, started']);
    await killDaemon('a');
    // The third run of the last 12 that needed an adjustment: more than 2, the root gives up.
    const t = Date.now();
    expect(await run(text, t)).toEqual({
      ok: false,
      lines: [
        'top/a: status 3, started',
        'top: adjustments needed in more than 2 of the last 12 runs: giving up, its services stopped',
        'top: held down for 60 s',
      ],
    });
    expect(pidOf('a')).toBeUndefined();
    const held = readStore(store)[md5('top')];
    expect(held?.held_until).toBeCloseTo(t / 1000 + 60, 3);
    expect(((held?.cycles ?? []) as [number, boolean][]).map(([, adjusted]) => adjusted)).toEqual([true, false, true, true]);
    // Within the hold-down a run does nothing but say so.
    const during = await run(text, t + 30_000);
    expect(during.ok).toBe(false);
    expect(during.lines).toEqual([`top: gave up, held down until ${new Date(t + 60_000).toISOString()}: nothing done`]);
    expect(pidOf('a')).toBeUndefined();
    // After it, the tree starts afresh: the old cycles are forgotten.
    expect(await run(text, t + 61_000)).toEqual({
      ok: true,
      lines: ['top: hold-down over, starting afresh', 'top/a: status 3, started'],
    });
    expect(readStore(store)[md5('top')]?.cycles).toEqual([[(t + 61_000) / 1000, true]]);
    expect(fs.readdirSync(dir.path).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  test("single - simplevisor's own store is read: its cycles count", async () => {
    const store = path.join(dir.path, 'store.json');
    const now = Date.now() / 1000;
    // As simplevisor 1.3 writes it: md5 of the names, float seconds, a service's entry (ignored).
    fs.writeFileSync(
      store,
      JSON.stringify({
        [md5('top')]: {
          name: 'top',
          cycles: [
            [now - 120.5, true],
            [now - 60.2, true],
          ],
          children: { [md5('a|running|x')]: {} },
        },
      }),
    );
    const text = `<simplevisor>\nstore = ${store}\nhold_down = 0\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nadjustments = 2\n<children>\n${lsb('a')}</children>\n</entry>\n`;
    const r = await run(text);
    expect(r.ok).toBe(false);
    expect(r.lines).toContain('top: adjustments needed in more than 2 of the last 12 runs: giving up, its services stopped');
    expect(readStore(store)[md5('top')]?.gave_up).toBe(true);
    expect((await run(text)).lines).toEqual([`top: gave up (hold_down = 0): nothing done until ${store} is removed`]);
  });

  test('single - a corrupt store is reported and ignored, then replaced whole; one that cannot be written fails the run', async () => {
    const store = path.join(dir.path, 'store.json');
    fs.writeFileSync(store, '{"truncated": [');
    const text = (s: string) =>
      `<simplevisor>\nstore = ${s}\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n${lsb('a')}</children>\n</entry>\n`;
    const r = await run(text(store));
    expect(r.ok).toBe(true);
    expect(r.lines[0]).toMatch(new RegExp(`^store ${store}: not JSON \\(.*\\): history ignored, file replaced$`));
    expect(r.lines[1]).toBe('top/a: status 3, started');
    expect(Object.keys(readStore(store))).toEqual([md5('top')]);
    fs.writeFileSync(store, JSON.stringify({ [md5('top')]: { name: 'top', cycles: 'many' } }));
    expect((await run(text(store))).lines).toEqual([
      'top: its history in the store is not valid: ignored',
      'top/a: OK, as expected (status 0)',
    ]);
    const nowhere = path.join(dir.path, 'no-such-dir', 'store.json');
    const w = await run(text(nowhere));
    expect(w.ok).toBe(false);
    expect(w.lines.at(-1)).toBe(`store: cannot open(${nowhere}.${process.pid}.tmp): ENOENT: the history of this run is lost`);
  });

  test('single - OTP intensity within one run; without a store nothing is remembered', async () => {
    const text = `<entry>\ntype = supervisor\nname = top\nmax_restarts = 1\nmax_time = 60\n<children>\n${lsb('a')}${lsb('b')}</children>\n</entry>\n`;
    const r = await run(text);
    expect(r).toEqual({
      ok: false,
      lines: [
        'top/a: status 3, started',
        'top/b: status 3, started',
        'top: more than 1 restarts within 60 s: giving up, its services stopped',
        'top: no store to remember it: the next run starts again',
      ],
    });
    expect([pidOf('a'), pidOf('b')]).toEqual([undefined, undefined]);
  });

  test('single - one_for_all: a dead service restarts its siblings too, stopped in reverse, started in order', async () => {
    const text = `<entry>\ntype = supervisor\nname = top\nstrategy = one_for_all\n<children>\n${lsb('a')}${lsb('b')}${lsb('c')}</children>\n</entry>\n`;
    await run(text);
    const before = { a: pidOf('a'), c: pidOf('c') };
    await killDaemon('b');
    const r = await run(text);
    expect(r).toEqual({
      ok: true,
      lines: [
        'top/a: OK, as expected (status 0)',
        'top/b: status 3, started',
        'top/a: restarted (one_for_all for top/b)',
        'top/c: restarted (one_for_all for top/b)',
        'top/c: OK, as expected (status 0)',
      ],
    });
    expect(pidOf('a')).not.toBe(before.a);
    expect(pidOf('c')).not.toBe(before.c);
    expect(alive(before.a as number)).toBe(false);
  });
});
