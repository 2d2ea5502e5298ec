import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive } from '@msgbricks/supervisor';
import { freePorts, removeDir, tempDir } from '@msgbricks/test-support';

// Children are real processes: a few start-ups on a loaded 2-core machine exceed jest's 5 s default.
jest.setTimeout(60_000);

const BIN = path.join(__dirname, '..', 'bin');
const dir = { path: '' };
let daemon: ChildProcess | undefined;
/** Processes a test left behind (a detached daemon, its children) if it failed midway. */
const leftover: number[] = [];

beforeEach(() => {
  dir.path = tempDir('msgsupervise-cli-');
});

afterEach(async () => {
  if (daemon !== undefined && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon?.once('exit', r));
  }
  daemon = undefined;
  for (const pid of leftover.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  removeDir(dir.path);
});

function cmd(args: string[], bin = 'msgsupervise'): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(BIN, `${bin}.js`), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `msgsupervise --conf FILE start` as `daemon`; what it prints on stdout (its log) accumulates in `text`. */
function startDaemon(file: string): { text: string } {
  const output = { text: '' };
  daemon = spawn(process.execPath, [path.join(BIN, 'msgsupervise.js'), '--conf', file, 'start'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout?.on('data', (b: Buffer) => {
    output.text += b.toString();
  });
  return output;
}

function conf(text: string): string {
  const file = path.join(dir.path, 'supervise.conf');
  fs.writeFileSync(file, text);
  return file;
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('msgsupervise command', () => {
  test('cli - check_configuration: OK exits 0; every problem with file, line and key, exit 2, no stack', () => {
    const good = conf(
      '<entry>\ntype = supervisor\nname = top\n<children>\n<entry>\ntype = service\nname = a\ncommand = sleep 1\n</entry>\n</children>\n</entry>\n',
    );
    expect(cmd(['--conf', good, 'check_configuration'])).toMatchObject({ code: 0, out: `${good}: configuration OK\n` });
    fs.writeFileSync(
      good,
      '<entry>\ntype = supervisor\nstrategy = all\n<children>\n<entry>\ntype = service\nname = a\n</entry>\n</children>\n</entry>\n',
    );
    const bad = cmd(['--conf', good, 'check_configuration'], 'simplevisor');
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      `simplevisor: invalid configuration:\n${good}:3: strategy: must be one of one_for_one, one_for_all, rest_for_one, not "all"\n${good}:5: start: service supervisor/a needs command, start or control\n`,
    );
    expect(cmd(['--conf', good, 'dance'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^msgsupervise: unknown command dance: /),
    });
    expect(cmd(['--conf', path.join(dir.path, 'none.conf'), 'check'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('none.conf: cannot read configuration file: ENOENT'),
    });
  });

  test('cli - start runs the tree; status (text, JSON), check, restart_child, stop_children, start, /healthz, /metrics, stop', async () => {
    const [port] = await freePorts(1);
    const file = conf(`<simplevisor>
  http = 127.0.0.1:${port}
  pidfile = ${dir.path}/msgsupervise.pid
  loglevel = info
</simplevisor>
<entry>
  type = supervisor
  name = top
  <children>
    <entry>
      type = service
      name = a
      command = sleep 1000
    </entry>
    <entry>
      type = service
      name = b
      command = sleep 1001
    </entry>
  </children>
</entry>
`);
    const output = startDaemon(file);
    const status = () => {
      const r = cmd(['--conf', file, 'status', '--json']);
      return r.code === 0
        ? (JSON.parse(r.out) as { children: { path: string; pid?: number; state: string; restarts: number }[] })
        : undefined;
    };
    const first = await until('running', () => {
      const s = status();
      return s?.children.every((c) => c.state === 'running') ? s : undefined;
    });
    expect(fs.readFileSync(path.join(dir.path, 'msgsupervise.pid'), 'utf8')).toBe(`${daemon?.pid}\n`);
    expect(fs.statSync(path.join(dir.path, 'msgsupervise.pid.sock')).isSocket()).toBe(true);
    const text = cmd(['--conf', file, 'status']);
    expect(text.out).toMatch(/^top: running, \d+ s, 0 restarts, expected running\n {2}top\/a: running pid \d+, /);
    expect(cmd(['--conf', file, 'check'])).toMatchObject({
      code: 0,
      out: 'top: OK, as expected\ntop/a: OK, as expected\ntop/b: OK, as expected\n',
    });

    // A SIGKILLed child is back at once, and the metrics count the restart.
    const a = first.children[0]?.pid as number;
    process.kill(a, 'SIGKILL');
    const second = await until('a restarted', () => {
      const s = status();
      return s?.children[0]?.state === 'running' && s.children[0].pid !== a ? s : undefined;
    });
    expect(second.children[0]?.restarts).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('msgsupervise_restarts_total{path="top/a"} 1');
    expect(metrics).toContain('msgsupervise_up{path="top/b",type="service"} 1');
    expect(metrics).toMatch(/msgsupervise_uptime_seconds\{path="top\/b"\} \d/);
    expect(metrics).toMatch(/msgsupervise_process_resident_memory_bytes \d+/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');

    // restart_child: a new b; not a failure (restarts unchanged).
    const b = second.children[1]?.pid as number;
    expect(cmd(['--conf', file, 'restart_child', 'top/b'])).toMatchObject({ code: 0, out: 'top/b: restarted\n' });
    const third = status();
    expect(third?.children[1]?.pid).not.toBe(b);
    expect(alive(b)).toBe(false);

    // stop_children: the supervisor stays, check warns (1), /healthz is 503; start brings them back.
    expect(cmd(['--conf', file, 'stop_children']).code).toBe(0);
    expect(cmd(['--conf', file, 'check'])).toMatchObject({
      code: 1,
      out: expect.stringContaining('top/a: WARNING, not expected (stopped, expected running)'),
    });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(503);
    expect(cmd(['--conf', file, 'start', 'top']).code).toBe(0);
    await until('running again', () => status()?.children.every((c) => c.state === 'running'));
    // stop PATH: expected stopped from now on, and check agrees.
    expect(cmd(['--conf', file, 'stop', 'top/b'])).toMatchObject({ code: 0, out: 'top/b: stopped\n' });
    expect(cmd(['--conf', file, 'check']).code).toBe(0);
    const last = status();

    // stop: children stopped, the daemon exits 0, its pid file and socket gone.
    expect(cmd(['--conf', file, 'stop']).code).toBe(0);
    const code = await new Promise((r) => daemon?.once('exit', r));
    expect(code).toBe(0);
    expect(alive(last?.children[0]?.pid as number)).toBe(false);
    expect(fs.readdirSync(dir.path).sort()).toEqual(['supervise.conf']);
    expect(output.text).toContain('stopping the children in reverse order');
    expect(cmd(['--conf', file, 'status'])).toMatchObject({
      code: 3,
      err: expect.stringMatching(/^msgsupervise: supervisor not running/),
    });
  });

  test('cli - stop_supervisor leaves the children running; the next supervisor adopts the unchanged ones (inherit, null) and stops the others', async () => {
    const socket = path.join(dir.path, 'ctl.sock');
    const entry = (name: string, command: string, output: string) =>
      `<entry>\ntype = service\nname = ${name}\ncommand = ${command}\noutput = ${output}\n</entry>\n`;
    const text = (cCommand: string) =>
      `<simplevisor>\ncontrol = ${socket}\nloglevel = info\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n` +
      entry('a', 'sleep 1002', 'null') +
      entry('b', 'sleep 1003', 'log') +
      entry('c', cCommand, 'null') +
      '</children>\n</entry>\n';
    const file = conf(text('sleep 1007'));
    const children = () => {
      const r = cmd(['--conf', file, 'status', '--json']);
      return r.code === 0
        ? (JSON.parse(r.out) as { children: { path: string; pid?: number; state: string; lastExit?: string }[] }).children
        : undefined;
    };
    const pids = (c: { pid?: number }[] | undefined) => c?.map((x) => x.pid as number) ?? [];
    startDaemon(file);
    const first = pids(await until('running', () => children()?.every((c) => c.state === 'running') && children()));
    leftover.push(...first);
    expect(cmd(['--conf', file, 'start'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('a supervisor is already running on'),
    });
    expect(cmd(['--conf', file, 'stop_supervisor'])).toMatchObject({ code: 0 });
    expect(await new Promise((r) => daemon?.once('exit', r))).toBe(0);
    expect(first.map(alive)).toEqual([true, true, true]);
    const left = JSON.parse(fs.readFileSync(`${socket}.children.json`, 'utf8')) as { children: { path: string; pid: number }[] };
    expect(left.children.map((l) => [l.path, l.pid])).toEqual([
      ['top/a', first[0]],
      ['top/b', first[1]],
      ['top/c', first[2]],
    ]);
    // c's command changed meanwhile; b's output went through the old supervisor: both replaced, a adopted.
    fs.writeFileSync(file, text('sleep 1008'));
    const output = startDaemon(file);
    const second = await until('running again', () => children()?.every((c) => c.state === 'running') && children());
    leftover.push(...pids(second));
    expect(pids(second)[0]).toBe(first[0]);
    expect(pids(second)[1]).not.toBe(first[1]);
    expect(pids(second)[2]).not.toBe(first[2]);
    expect([alive(first[1] as number), alive(first[2] as number)]).toEqual([false, false]);
    expect(fs.existsSync(`${socket}.children.json`)).toBe(false);
    await until('adoption logged', () => output.text.includes(`top/a: pid ${first[0]} adopted`));
    expect(output.text).toContain(
      `top/b: pid ${first[1]} left by the previous supervisor not adopted (its output went through the previous supervisor): stopped`,
    );
    expect(output.text).toContain(
      `top/c: pid ${first[2]} left by the previous supervisor not adopted (changed in the configuration): stopped`,
    );
    // The adopted process is watched: its death is seen (by polling, it is not our child) and it is restarted.
    process.kill(first[0] as number, 'SIGKILL');
    const third = await until('a restarted', () => {
      const a = children()?.[0];
      return a?.state === 'running' && a.pid !== first[0] ? a : undefined;
    });
    leftover.push(third.pid as number);
    expect(third.lastExit).toBe('ended (adopted from a previous supervisor: exit status unknown)');
    // And stop ends them all, the new child included.
    expect(cmd(['--conf', file, 'stop']).code).toBe(0);
    expect(await new Promise((r) => daemon?.once('exit', r))).toBe(0);
    await until('all gone', () => [third.pid, ...pids(second).slice(1)].every((p) => !alive(p as number)));
  });

  test('cli - --daemon: returns once the detached daemon answers; pid file, socket, stop ends it and its children, nothing left', async () => {
    const pidfile = path.join(dir.path, 'msgsupervise.pid');
    const file = conf(
      `<simplevisor>\npidfile = ${pidfile}\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n` +
        '<entry>\ntype = service\nname = a\ncommand = sleep 1006\n</entry>\n</children>\n</entry>\n',
    );
    const started = cmd(['--conf', file, '--daemon', 'start']);
    expect(started).toMatchObject({ code: 0, err: '' });
    const pid = Number(/^msgsupervise started in the background \(pid (\d+)\)\n$/.exec(started.out)?.[1]);
    leftover.push(pid);
    // It answered before the command returned: no waiting needed for the socket or the pid file.
    expect(fs.readFileSync(pidfile, 'utf8')).toBe(`${pid}\n`);
    expect(fs.statSync(`${pidfile}.sock`).isSocket()).toBe(true);
    // Detached: a session of its own (setsid), no longer a child of the command that started it.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    expect(Number(stat[3])).toBe(pid);
    expect(cmd(['--conf', file, '--daemon', 'start'])).toMatchObject({
      code: 2,
      err: expect.stringContaining('a supervisor is already running on'),
    });
    const child = await until('a running', () => {
      const r = cmd(['--conf', file, 'status', '--json']);
      const a = r.code === 0 ? (JSON.parse(r.out) as { children: { pid?: number; state: string }[] }).children[0] : undefined;
      return a?.state === 'running' ? a.pid : undefined;
    });
    leftover.push(child);
    expect(Number(fs.readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]?.split(' ')[1])).toBe(pid);
    expect(cmd(['--conf', file, 'stop'])).toMatchObject({ code: 0 });
    // The daemon reaped its child; the daemon itself, an orphan, is reaped by whatever adopted it (init here).
    await until(
      'daemon and child gone from the process table',
      () => !fs.existsSync(`/proc/${pid}`) && !fs.existsSync(`/proc/${child}`),
    );
    expect(fs.readdirSync(dir.path)).toEqual(['supervise.conf']);
    // A daemon that cannot start says so, with its exit code: here its pid file cannot be written.
    const bad = conf(fs.readFileSync(file, 'utf8').replace(pidfile, path.join(dir.path, 'none', 'x.pid')));
    const failed = cmd(['--conf', bad, '--control', path.join(dir.path, 'ctl.sock'), '--daemon', 'start']);
    expect(failed.code).toBe(2);
    expect(failed.err).toMatch(
      /^msgsupervise: the daemon exited with 2 before answering on .*ctl\.sock \(run start without --daemon to see why\)\n$/,
    );
  });

  test('cli - single: one cycle over the LSB services, from cron, as simplevisor', () => {
    const pidfile = path.join(dir.path, 'daemon.pid');
    const init = path.join(dir.path, 'init.sh');
    fs.writeFileSync(
      init,
      `#!/bin/sh\ncase "$1" in\nstart) sleep 1003 >/dev/null 2>&1 & echo $! > ${pidfile} ;;\nstop) kill $(cat ${pidfile}); rm -f ${pidfile} ;;\n` +
        `status) [ -f ${pidfile} ] && kill -0 $(cat ${pidfile}) 2>/dev/null && exit 0; exit 3 ;;\nesac\n`,
      { mode: 0o755 },
    );
    const file = conf(
      `<entry>\ntype = supervisor\nname = top\n<children>\n<entry>\ntype = service\nname = lsb\ncontrol = ${init}\n</entry>\n` +
        `<entry>\ntype = service\nname = child\ncommand = sleep 1\n</entry>\n</children>\n</entry>\n`,
    );
    expect(cmd(['--conf', file, 'single'], 'simplevisor')).toMatchObject({
      code: 0,
      out: 'top/lsb: status 3, started\ntop/child: runs only under a running supervisor (msgsupervise start), skipped\n',
    });
    const pid = Number(fs.readFileSync(pidfile, 'utf8'));
    expect(alive(pid)).toBe(true);
    expect(cmd(['--conf', file, 'single']).out).toContain('top/lsb: OK, as expected (status 0)\n');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('name = lsb\n', 'name = lsb\nexpected = stopped\n'));
    expect(cmd(['--conf', file, 'single']).out).toContain('top/lsb: status 0, stopped\n');
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(pidfile)).toBe(false);
  });
  test('cli - SIGHUP and reload apply the difference (unchanged children keep running); an invalid file is reported and the tree kept', async () => {
    const socket = path.join(dir.path, 'ctl.sock');
    const entry = (n: string) => `<entry>\ntype = service\nname = ${n}\ncommand = sleep 1004\n</entry>\n`;
    const tree = (...names: string[]) =>
      `<simplevisor>\nloglevel = info\ncontrol = ${socket}\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\n<children>\n${names.map(entry).join('')}</children>\n</entry>\n`;
    const file = conf(tree('a'));
    const output = startDaemon(file);
    // With --control the client needs nothing from the file, which is invalid for a while below.
    const children = () => {
      const r = cmd(['--conf', file, '--control', socket, 'status', '--json']);
      return r.code === 0
        ? (JSON.parse(r.out) as { children: { path: string; state: string; pid?: number }[] }).children
        : undefined;
    };
    const a = await until('a running', () => children()?.[0]?.pid);
    fs.writeFileSync(file, tree('a', 'b'));
    daemon?.kill('SIGHUP');
    const two = await until('a and b running', () => {
      const c = children();
      return c?.length === 2 && c.every((x) => x.state === 'running') ? c : undefined;
    });
    expect(two.map((c) => c.path)).toEqual(['top/a', 'top/b']);
    // Only the difference: a, unchanged, kept running.
    expect(two[0]?.pid).toBe(a);
    await until('reload logged', () => output.text.includes('SIGHUP: top/b: added'));
    // The same through the control socket, with the changes as the answer: b's command changed, b alone restarted.
    fs.writeFileSync(file, tree('a', 'b').replace('sleep 1004\n</entry>\n</children>', 'sleep 1005\n</entry>\n</children>'));
    expect(cmd(['--conf', file, '--control', socket, 'reload'])).toMatchObject({
      code: 0,
      out: 'top/b: restarted (command changed)\n',
    });
    const three = children();
    expect(three?.[0]?.pid).toBe(a);
    expect(three?.[1]?.pid).not.toBe(two[1]?.pid);
    expect(alive(two[1]?.pid as number)).toBe(false);
    fs.writeFileSync(file, tree('a', 'b').replace('type = supervisor', 'type = supervisor\nstrategy = bogus'));
    daemon?.kill('SIGHUP');
    await until('reload refused', () => output.text.includes('SIGHUP: configuration not reloaded, the running tree is kept:'));
    expect(output.text).toContain(`${file}:7: strategy: must be one of one_for_one, one_for_all, rest_for_one, not "bogus"`);
    expect(children()?.map((c) => c.pid)).toEqual(three?.map((c) => c.pid));
    const refused = cmd(['--conf', file, '--control', socket, 'reload']);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('configuration not reloaded, the running tree is kept:');
  });
});
