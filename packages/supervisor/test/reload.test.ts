import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, loadConfig, type Supervision } from '@msgbricks/supervisor';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { find, journalChild, NODE, readLines, tree, waitFor, writeFiles } from './helpers';

// Children are real processes: a few start-ups on a loaded 2-core machine exceed jest's 5 s default.
jest.setTimeout(60_000);

const dir = { path: '' };
let running: Supervision | undefined;

beforeEach(() => {
  dir.path = tempDir('supervise-reload-');
});

afterEach(async () => {
  await running?.stop();
  running = undefined;
  removeDir(dir.path);
});

interface Entry {
  name: string;
  extra?: string;
  /** The second argument of the journal child: its readiness delay, here only a way to change its command. */
  arg?: string;
}

/** A supervisor `top` of journal children (ready = fd), as configuration text. */
function conf(journal: string, strategy: string, entries: Entry[], global = ''): string {
  const child = journalChild(dir.path, journal);
  const entry = (e: Entry) =>
    `<entry>\ntype = service\nname = ${e.name}\ncommand = ${NODE} ${child} ${e.name} ${e.arg ?? '0'}\nready = fd\nstop_timeout = 5\n${e.extra ?? ''}</entry>\n`;
  return `<simplevisor>\nhold_down = 0\n${global}</simplevisor>\n<entry>\ntype = supervisor\nname = top\nstrategy = ${strategy}\n<children>\n${entries.map(entry).join('')}</children>\n</entry>\n`;
}

/** Writes `text` as the configuration file and reloads the tree with it. */
function reloadWith(sup: Supervision, text: string) {
  const file = writeFiles(dir.path, { 'supervise.conf': text });
  return sup.reload(loadConfig(file));
}

const pids = (sup: Supervision) => Object.fromEntries((sup.status().children ?? []).map((c) => [c.path.split('/')[1], c.pid]));
const startsAndStops = (journal: string) =>
  readLines(journal)
    .filter((l) => !l.startsWith('ready'))
    .map((l) => l.split(' ').slice(0, 2).join(' '));

describe('supervise reload', () => {
  test('reload - unchanged children keep their pids; a changed command restarts that child alone; removed stopped, added started in place', async () => {
    const journal = path.join(dir.path, 'journal');
    const { sup } = tree(dir.path, conf(journal, 'one_for_one', [{ name: 'a' }, { name: 'b' }, { name: 'c' }]));
    running = sup;
    await sup.start();
    const before = pids(sup);
    fs.writeFileSync(journal, '');
    const changes = await reloadWith(
      sup,
      conf(journal, 'one_for_one', [
        { name: 'a', extra: 'backoff_max = 5\nno_restart_exit = 9\n' },
        { name: 'd' },
        { name: 'b', arg: '1' },
      ]),
    );
    expect(changes).toEqual([
      { path: 'top/d', change: 'added' },
      { path: 'top/b', change: 'restarted', detail: 'command changed' },
      { path: 'top/c', change: 'removed' },
      { path: 'top/a', change: 'updated', detail: 'backoff_max, no_restart_exit' },
    ]);
    // Stopped in reverse start order (c, then b), then started in the new order (d before b), each once ready.
    expect(startsAndStops(journal)).toEqual(['stop c', 'stop b', 'start d', 'start b']);
    const after = pids(sup);
    expect(Object.keys(after)).toEqual(['a', 'd', 'b']);
    expect(after.a).toBe(before.a);
    expect(after.b).not.toBe(before.b);
    expect(sup.status().children?.every((c) => c.state === 'running')).toBe(true);
    // The kept child runs under its new settings: a restart of it is still handled.
    process.kill(after.a as number, 'SIGKILL');
    await waitFor('a restarted', () => find(sup.status(), 'top/a').state === 'running' && pids(sup).a !== after.a);
    expect(pids(sup).b).toBe(after.b);
  });

  test('reload - a changed strategy applies to the running children without restarting them', async () => {
    const journal = path.join(dir.path, 'journal');
    const entries = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
    const { sup } = tree(dir.path, conf(journal, 'one_for_one', entries));
    running = sup;
    await sup.start();
    const before = pids(sup);
    fs.writeFileSync(journal, '');
    expect(await reloadWith(sup, conf(journal, 'one_for_all', entries))).toEqual([
      { path: 'top', change: 'updated', detail: 'strategy one_for_all' },
    ]);
    expect(pids(sup)).toEqual(before);
    expect(readLines(journal)).toEqual([]);
    process.kill(before.b as number, 'SIGKILL');
    await waitFor('one_for_all restart', () => startsAndStops(journal).length === 5);
    expect(startsAndStops(journal)).toEqual(['stop c', 'stop a', 'start a', 'start b', 'start c']);
  });

  test('reload - nested: a sub-supervisor is kept while its child is replaced; expected stopped stops an entry; a bad start is handled', async () => {
    const journal = path.join(dir.path, 'journal');
    const child = journalChild(dir.path, journal);
    const text = (x: string, yExpected: string, z = '') =>
      `<entry>\ntype = supervisor\nname = top\nmax_restarts = 100\nmax_time = 60\n<children>\n` +
      `<entry>\ntype = supervisor\nname = sub\n<children>\n<entry>\ntype = service\nname = x\ncommand = ${NODE} ${child} ${x}\n</entry>\n</children>\n</entry>\n` +
      `<entry>\ntype = service\nname = y\ncommand = ${NODE} ${child} y\nexpected = ${yExpected}\n</entry>\n${z}</children>\n</entry>\n`;
    const { sup, rec } = tree(dir.path, text('x', 'running'));
    running = sup;
    await sup.start();
    await waitFor('x and y', () => readLines(journal).length === 2);
    const y = find(sup.status(), 'top/y').pid;
    const missing = `<entry>\ntype = service\nname = z\ncommand = ${path.join(dir.path, 'no-such-program')}\nbackoff_min = 5\n</entry>\n`;
    const changes = await reloadWith(sup, text('x2', 'stopped', missing));
    expect(changes).toEqual([
      { path: 'top/z', change: 'added' },
      { path: 'top/sub/x', change: 'restarted', detail: 'command changed' },
      { path: 'top/y', change: 'updated', detail: 'expected stopped' },
    ]);
    await waitFor('x2 started', () => readLines(journal).some((l) => l.startsWith('start x2')));
    expect(find(sup.status(), 'top/y')).toMatchObject({ state: 'stopped', expected: 'stopped' });
    expect(readLines(journal)).toEqual(expect.arrayContaining(['stop x', 'stop y']));
    expect(alive(y as number)).toBe(false);
    // z cannot start: reported and handed to the strategy as any failed start, not thrown by the reload.
    await waitFor('z restarted by the strategy', () => rec.events.some(([, e, p]) => e === 'restart' && p === 'top/z'));
    expect(rec.messages.some((m) => /top\/z: cannot spawn .*no-such-program: ENOENT/.test(m))).toBe(true);
    expect(find(sup.status(), 'top/sub').state).toBe('running');
  });

  test('reload - under a stopped supervisor nothing starts until it does; another root replaces the whole tree', async () => {
    const journal = path.join(dir.path, 'journal');
    const { sup } = tree(dir.path, conf(journal, 'one_for_one', [{ name: 'a' }]));
    running = sup;
    await sup.start();
    await sup.stopChildren();
    fs.writeFileSync(journal, '');
    expect(await reloadWith(sup, conf(journal, 'one_for_one', [{ name: 'a' }, { name: 'b' }]))).toEqual([
      { path: 'top/b', change: 'added' },
    ]);
    expect(readLines(journal)).toEqual([]);
    expect(find(sup.status(), 'top/b').state).toBe('stopped');
    await sup.setExpected('top', true);
    expect(startsAndStops(journal)).toEqual(['start a', 'start b']);
    const old = pids(sup);
    fs.writeFileSync(journal, '');
    const other = conf(journal, 'one_for_one', [{ name: 'a' }]).replace('name = top', 'name = site');
    expect(await reloadWith(sup, other)).toEqual([{ path: 'site', change: 'restarted', detail: 'another root' }]);
    expect(startsAndStops(journal)).toEqual(['stop b', 'stop a', 'start a']);
    expect(sup.status().path).toBe('site');
    expect(find(sup.status(), 'site/a').state).toBe('running');
    expect(alive(old.a as number)).toBe(false);
  });

  test('reload - a restart waiting in its backoff is cut short: the reload starts the child', async () => {
    const journal = path.join(dir.path, 'journal');
    const slow = { name: 'a', extra: 'backoff_min = 30\nbackoff_max = 30\n' };
    const { sup } = tree(dir.path, conf(journal, 'one_for_one', [slow]));
    running = sup;
    await sup.start();
    process.kill(pids(sup).a as number, 'SIGKILL');
    await waitFor(
      'first restart',
      () => find(sup.status(), 'top/a').restarts === 1 && find(sup.status(), 'top/a').state === 'running',
    );
    process.kill(pids(sup).a as number, 'SIGKILL');
    await waitFor('backoff', () => find(sup.status(), 'top/a').state === 'backoff');
    const t0 = Date.now();
    expect(
      await reloadWith(sup, conf(journal, 'one_for_one', [{ ...slow, extra: `${slow.extra}no_restart_exit = 7\n` }])),
    ).toEqual([{ path: 'top/a', change: 'updated', detail: 'no_restart_exit' }]);
    expect(find(sup.status(), 'top/a').state).toBe('running');
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('reload - a new log_dir takes a running child output at once, no line split, no restart', async () => {
    const one = path.join(dir.path, 'one');
    const two = path.join(dir.path, 'two');
    fs.mkdirSync(one);
    fs.mkdirSync(two);
    writeFiles(dir.path, {
      'talk.js': `let i = 0; setInterval(() => { process.stdout.write('line ' + i + ' '); process.stdout.write('end\\n'); i++; }, 5);`,
    });
    const text = (logDir: string) =>
      `<simplevisor>\nlog_dir = ${logDir}\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n` +
      `<entry>\ntype = service\nname = talk\ncommand = ${NODE} ${path.join(dir.path, 'talk.js')}\n</entry>\n</children>\n</entry>\n`;
    const { sup } = tree(dir.path, text(one));
    running = sup;
    await sup.start();
    const pid = find(sup.status(), 'top/talk').pid;
    await waitFor('lines in one', () => readLines(path.join(one, 'top.talk.log')).length > 10);
    expect(await reloadWith(sup, text(two))).toEqual([{ path: '', change: 'updated', detail: 'log_dir' }]);
    await waitFor('lines in two', () => readLines(path.join(two, 'top.talk.log')).length > 10);
    expect(find(sup.status(), 'top/talk').pid).toBe(pid);
    const lines = [...readLines(path.join(one, 'top.talk.log')), ...readLines(path.join(two, 'top.talk.log'))];
    // Every line whole, and none lost or repeated across the move.
    expect(lines).toEqual(lines.map((_, i) => `line ${i} end`));
  });
});
