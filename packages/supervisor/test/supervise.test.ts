import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { alive, type Supervision } from '@msgbricks/supervisor';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { find, journalChild, killAndWait, NODE, readLines, tree, waitFor, writeFiles } from './helpers';

// Children are real processes: a few start-ups on a loaded 2-core machine exceed jest's 5 s default.
jest.setTimeout(60_000);

const dir = { path: '' };
let running: Supervision | undefined;

beforeEach(() => {
  dir.path = tempDir('supervise-');
});

// The tree is stopped before its directory goes: its children write there.
afterEach(async () => {
  await running?.stop();
  running = undefined;
  removeDir(dir.path);
});

/** A supervisor of three journal children a, b, c under `strategy`. */
function abc(strategy: string, extra = ''): { journal: string; conf: string } {
  const journal = path.join(dir.path, 'journal');
  const child = journalChild(dir.path, journal);
  const entry = (n: string) =>
    `<entry>\ntype = service\nname = ${n}\ncommand = ${NODE} ${child} ${n} 0\nready = fd\nstop_timeout = 5\n</entry>\n`;
  return {
    journal,
    conf: `<simplevisor>\nhold_down = 0\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nstrategy = ${strategy}\n${extra}<children>\n${entry('a')}${entry('b')}${entry('c')}</children>\n</entry>\n`,
  };
}

/** The journal without readiness lines: `start X` and `stop X` in order. */
const startsAndStops = (journal: string) =>
  readLines(journal)
    .filter((l) => !l.startsWith('ready'))
    .map((l) => l.split(' ').slice(0, 2).join(' '));
const pidOf = (lines: string[], name: string) =>
  Number(
    lines
      .filter((l) => l.startsWith(`start ${name} `))
      .at(-1)
      ?.split(' ')[2],
  );

describe('supervise', () => {
  test('supervise - a child killed with SIGKILL is running again within a second', async () => {
    const { journal, conf } = abc('one_for_one');
    const { sup } = tree(dir.path, conf);
    running = sup;
    await sup.start();
    const before = find(sup.status(), 'top/b').pid as number;
    expect(pidOf(readLines(journal), 'b')).toBe(before);
    for (let i = 0; i < 3; i++) {
      expect(await killAndWait(sup, 'top/b')).toBeLessThan(1000);
      // Each new b has written its start line: it runs, it is not only spawned.
      await waitFor('b start line', () => pidOf(readLines(journal), 'b') === find(sup.status(), 'top/b').pid);
      // A fast crash loop backs off: the third death waits, but well within a second with the defaults.
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(find(sup.status(), 'top/b').restarts).toBe(3);
    // one_for_one: a and c untouched.
    expect(startsAndStops(journal).filter((l) => l === 'start a' || l === 'start c')).toHaveLength(2);
  });

  test('supervise - one_for_all stops the others in reverse order, then starts all in order', async () => {
    const { journal, conf } = abc('one_for_all');
    const { sup } = tree(dir.path, conf);
    running = sup;
    await sup.start();
    fs.writeFileSync(journal, '');
    process.kill(find(sup.status(), 'top/b').pid as number, 'SIGKILL');
    await waitFor('restart of all', () => startsAndStops(journal).length === 5);
    expect(startsAndStops(journal)).toEqual(['stop c', 'stop a', 'start a', 'start b', 'start c']);
  });

  test('supervise - rest_for_one restarts the dead child and those after it, not those before', async () => {
    const { journal, conf } = abc('rest_for_one');
    const { sup } = tree(dir.path, conf);
    running = sup;
    await sup.start();
    const a = pidOf(readLines(journal), 'a');
    fs.writeFileSync(journal, '');
    process.kill(find(sup.status(), 'top/b').pid as number, 'SIGKILL');
    await waitFor('restart of b and c', () => startsAndStops(journal).length === 3);
    expect(startsAndStops(journal)).toEqual(['stop c', 'start b', 'start c']);
    expect(find(sup.status(), 'top/a').pid).toBe(a);
  });

  test('supervise - stop is TERM to each process group in reverse start order, KILL after stop_timeout', async () => {
    const journal = path.join(dir.path, 'journal');
    const child = journalChild(dir.path, journal);
    const grand = path.join(dir.path, 'grandchild.pid');
    writeFiles(dir.path, {
      'stubborn.js': `process.on('SIGTERM', () => {}); require('node:fs').appendFileSync(${JSON.stringify(journal)}, 'start stubborn\\n'); setInterval(() => {}, 1000);`,
      'group.sh': `#!/bin/sh\nsleep 1000 &\necho $! > ${grand}\nwait\n`,
    });
    const { sup } = tree(
      dir.path,
      `<entry>\ntype = supervisor\nname = top\n<children>\n` +
        `<entry>\ntype = service\nname = a\ncommand = ${NODE} ${child} a\n</entry>\n` +
        `<entry>\ntype = service\nname = group\ncommand = ${path.join(dir.path, 'group.sh')}\n</entry>\n` +
        `<entry>\ntype = service\nname = stubborn\ncommand = ${NODE} ${path.join(dir.path, 'stubborn.js')}\nstop_timeout = 0.3\n</entry>\n` +
        `<entry>\ntype = service\nname = c\ncommand = ${NODE} ${child} c\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    await waitFor(
      'children up',
      () => readLines(journal).length === 3 && fs.existsSync(grand) && fs.readFileSync(grand, 'utf8').endsWith('\n'),
    );
    const sleeper = Number(fs.readFileSync(grand, 'utf8'));
    expect(alive(sleeper)).toBe(true);
    const t0 = Date.now();
    await sup.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(readLines(journal).filter((l) => l.startsWith('stop'))).toEqual(['stop c', 'stop a']);
    expect(find(sup.status(), 'top/stubborn').lastExit).toBe('killed by SIGKILL');
    // The shell's background child was in its process group: it got the TERM too.
    await waitFor('grandchild gone', () => !alive(sleeper), 2000);
  });

  test('supervise - a failing service makes its supervisor give up (OTP intensity); the one_for_one parent restarts it', async () => {
    writeFiles(dir.path, { 'fail.js': 'process.exit(1)' });
    const { sup, rec } = tree(
      dir.path,
      `<simplevisor>\nhold_down = 0\n</simplevisor>\n<entry>\ntype = supervisor\nname = root\nmax_restarts = 1\nmax_time = 60\n<children>\n` +
        `<entry>\ntype = supervisor\nname = sub\nmax_restarts = 2\nmax_time = 60\n<children>\n` +
        `<entry>\ntype = service\nname = bad\ncommand = ${NODE} ${path.join(dir.path, 'fail.js')}\nbackoff_min = 0.01\n</entry>\n` +
        `</children>\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    await waitFor('gave up', () => rec.events.some(([, e]) => e === 'gave-up'));
    const seq = rec.events.filter(([, e]) => e === 'restart' || e === 'failed').map(([, e, p]) => `${e} ${p}`);
    // sub: 2 restarts allowed, the 3rd failure gives up; root restarts sub once (its max_restarts = 1), and the
    // second time sub fails, root gives up too.
    expect(seq).toEqual([
      'restart root/sub/bad',
      'restart root/sub/bad',
      'failed root/sub',
      'restart root/sub',
      'restart root/sub/bad',
      'restart root/sub/bad',
      'failed root/sub',
      'failed root',
    ]);
    expect(sup.status().state).toBe('failed');
  });

  test('supervise - simplevisor intensity: more than `adjustments` cycles with a restart in the `window` fails', async () => {
    writeFiles(dir.path, { 'fail.js': 'process.exit(1)' });
    const { sup, rec } = tree(
      dir.path,
      `<simplevisor>\ninterval = 1\nhold_down = 0\n</simplevisor>\n<entry>\ntype = supervisor\nname = root\nwindow = 12\nadjustments = 3\n<children>\n` +
        `<entry>\ntype = service\nname = bad\ncommand = ${NODE} ${path.join(dir.path, 'fail.js')}\nbackoff_min = 0.05\nbackoff_max = 0.1\n</entry>\n` +
        `</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    await waitFor('gave up', () => rec.events.some(([, e]) => e === 'gave-up'), 20_000);
    const exits = rec.events.filter(([, e]) => e === 'exit').map(([t]) => Math.floor(t / 1000));
    // Several deaths may fall in one cycle; the fourth distinct cycle is the one too many.
    expect(new Set(exits).size).toBe(4);
    expect(exits.length).toBeGreaterThan(4);
  });

  test('supervise - after giving up the root holds down, then starts again', async () => {
    const ok = path.join(dir.path, 'ok');
    writeFiles(dir.path, {
      'flaky.js': `if (!require('node:fs').existsSync(${JSON.stringify(ok)})) process.exit(3); setInterval(() => {}, 1000);`,
    });
    const { sup, rec } = tree(
      dir.path,
      `<simplevisor>\nhold_down = 0.5\n</simplevisor>\n<entry>\ntype = supervisor\nname = root\nmax_restarts = 1\nmax_time = 60\n<children>\n` +
        `<entry>\ntype = service\nname = flaky\ncommand = ${NODE} ${path.join(dir.path, 'flaky.js')}\nbackoff_min = 0.01\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    sup.once('held', () => fs.writeFileSync(ok, ''));
    await sup.start();
    await waitFor('held', () => rec.events.some(([, e]) => e === 'held'));
    await waitFor(
      'running again',
      () => sup.status().state === 'running' && find(sup.status(), 'root/flaky').state === 'running',
    );
    const held = rec.events.find(([, e]) => e === 'held') as [number, string, string];
    const ready = rec.events.filter(([, e]) => e === 'ready').at(-1) as [number, string, string];
    expect(ready[0] - held[0]).toBeGreaterThanOrEqual(450);
    expect(rec.events.some(([, e]) => e === 'gave-up')).toBe(false);
  });

  test('supervise - dependants start only once a child is ready (notification fd, health URL)', async () => {
    const journal = path.join(dir.path, 'journal');
    const child = journalChild(dir.path, journal);
    const port = await new Promise<number>((resolve) => {
      const s = http.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    writeFiles(dir.path, {
      'web.js': `const fs = require('node:fs'); const t0 = Date.now();
require('node:http').createServer((q, r) => { const ok = Date.now() - t0 > 300; if (ok) fs.appendFileSync(${JSON.stringify(journal)}, 'ready web\\n'); r.statusCode = ok ? 200 : 503; r.end(); }).listen(${port}, '127.0.0.1');`,
    });
    const { sup } = tree(
      dir.path,
      `<entry>\ntype = supervisor\nname = top\n<children>\n` +
        `<entry>\ntype = service\nname = a\ncommand = ${NODE} ${child} a 300\nready = fd\n</entry>\n` +
        `<entry>\ntype = service\nname = web\ncommand = ${NODE} ${path.join(dir.path, 'web.js')}\nready_url = http://127.0.0.1:${port}/healthz\n</entry>\n` +
        `<entry>\ntype = service\nname = b\ncommand = ${NODE} ${child} b\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    await waitFor('b started', () => readLines(journal).some((l) => l.startsWith('start b')));
    const order = readLines(journal).map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(order.slice(0, 2)).toEqual(['start a', 'ready a']);
    expect(order.indexOf('ready web')).toBeGreaterThan(1);
    expect(order.indexOf('start b')).toBeGreaterThan(order.indexOf('ready web'));
  });

  test('supervise - an exit code in no_restart_exit is final; a spawn failure is reported, not thrown', async () => {
    writeFiles(dir.path, { 'done.js': 'process.exit(42)' });
    const { sup, rec } = tree(
      dir.path,
      `<simplevisor>\nhold_down = 0\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nmax_restarts = 2\nmax_time = 60\n<children>\n` +
        `<entry>\ntype = service\nname = once\ncommand = ${NODE} ${path.join(dir.path, 'done.js')}\nno_restart_exit = 42\n</entry>\n` +
        `<entry>\ntype = service\nname = missing\ncommand = ${path.join(dir.path, 'no-such-program')}\nbackoff_min = 0.5\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    await waitFor('gave up', () => rec.events.some(([, e]) => e === 'gave-up'));
    expect(rec.events.filter(([, e, p]) => e === 'restart' && p === 'top/once')).toHaveLength(0);
    expect(rec.events.filter(([, e, p]) => e === 'restart' && p === 'top/missing')).toHaveLength(2);
    expect(rec.messages.some((m) => /top\/missing: cannot spawn .*no-such-program: ENOENT/.test(m))).toBe(true);
    expect(find(sup.status(), 'top/once')).toMatchObject({ expected: 'stopped', lastExit: 'exited with 42' });
  });

  test('supervise - an LSB service is polled with its status command and started again when it died', async () => {
    const pidfile = path.join(dir.path, 'daemon.pid');
    writeFiles(dir.path, {
      'init.sh': `#!/bin/sh
case "$1" in
start) sleep 1000 >/dev/null 2>&1 & echo $! > ${pidfile} ;;
stop) [ -f ${pidfile} ] && kill $(cat ${pidfile}); rm -f ${pidfile} ;;
status) [ -f ${pidfile} ] && kill -0 $(cat ${pidfile}) 2>/dev/null && exit 0; exit 3 ;;
esac
`,
    });
    const { sup, rec } = tree(
      dir.path,
      `<simplevisor>\ninterval = 0.2\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n` +
        `<entry>\ntype = service\nname = lsb\ncontrol = ${path.join(dir.path, 'init.sh')}\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    const first = Number(fs.readFileSync(pidfile, 'utf8'));
    expect(alive(first)).toBe(true);
    process.kill(first, 'SIGKILL');
    await waitFor(
      'restarted',
      () =>
        fs.existsSync(pidfile) &&
        Number(fs.readFileSync(pidfile, 'utf8')) !== first &&
        find(sup.status(), 'top/lsb').state === 'running',
    );
    expect(rec.events.some(([, e, p]) => e === 'exit' && p === 'top/lsb')).toBe(true);
    const second = Number(fs.readFileSync(pidfile, 'utf8'));
    await sup.stop();
    await waitFor('stopped', () => !alive(second), 2000);
    expect(fs.existsSync(pidfile)).toBe(false);
  });
  test('supervise - a stop during a backoff wait ends the wait: the tree started again still restarts at once', async () => {
    const journal = path.join(dir.path, 'journal');
    const child = journalChild(dir.path, journal);
    const { sup, rec } = tree(
      dir.path,
      `<entry>\ntype = supervisor\nname = top\nmax_restarts = 100\nmax_time = 60\n<children>\n` +
        `<entry>\ntype = service\nname = a\ncommand = ${NODE} ${child} a 0\nready = fd\nbackoff_min = 30\nbackoff_max = 30\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    await sup.start();
    // The second quick death in a row waits 15-30 s before its restart...
    process.kill(find(sup.status(), 'top/a').pid as number, 'SIGKILL');
    await waitFor(
      'first restart',
      () => find(sup.status(), 'top/a').restarts === 1 && find(sup.status(), 'top/a').state === 'running',
    );
    process.kill(find(sup.status(), 'top/a').pid as number, 'SIGKILL');
    await waitFor('backoff', () => find(sup.status(), 'top/a').state === 'backoff');
    // ... which stop_children cuts short; started again, the tree handles the next death at once.
    const stopping = Date.now();
    await sup.stopChildren();
    expect(Date.now() - stopping).toBeLessThan(5000);
    await sup.setExpected('top', true);
    expect(find(sup.status(), 'top/a').state).toBe('running');
    expect(await killAndWait(sup, 'top/a')).toBeLessThan(5000);
    expect(rec.messages.some((m) => /top\/a: restart in \d+ ms \(backoff\)/.test(m))).toBe(true);
  });

  test('supervise - adopt takes a process left running only if it is the same one (start time) and run the same way', async () => {
    const { sup } = tree(
      dir.path,
      `<entry>\ntype = supervisor\nname = top\n<children>\n<entry>\ntype = service\nname = a\ncommand = sleep 1009\noutput = null\n</entry>\n</children>\n</entry>\n`,
    );
    running = sup;
    const other = spawn('sleep', ['1009'], { detached: true, stdio: 'ignore' });
    const pid = other.pid as number;
    try {
      const start = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] as string;
      const run = JSON.stringify({ command: ['sleep', '1009'], env: [], output: 'null' });
      // A pid whose start time differs is another process now: left alone.
      expect(await sup.adopt([{ path: 'top/a', pid, start: `${start}0`, run }])).toEqual([
        `top/a: pid ${pid} left by the previous supervisor has ended`,
      ]);
      expect(alive(pid)).toBe(true);
      expect(await sup.adopt([{ path: 'top/a', pid, start, run }])).toEqual([`top/a: pid ${pid} adopted`]);
      await sup.start();
      expect(find(sup.status(), 'top/a')).toMatchObject({ state: 'running', pid });
      await sup.stop();
      await waitFor('adopted process stopped', () => !alive(pid));
      expect(find(sup.status(), 'top/a').state).toBe('stopped');
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
