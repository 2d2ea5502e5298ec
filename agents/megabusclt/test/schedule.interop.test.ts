/**
 * megabusclt's timed schedules end to end against a private RabbitMQ: the announcement published with `megabusclt
 * publish`, consumed by `megabusclt run` into the plugin's spool, scheduled, its steps run by time; megabusclt killed
 * (SIGKILL) in the middle of the schedule and started again; the all-clear cancelling what is left.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type EventRecord, recordName } from '@msgbricks/megabus';
import { type Broker, freePorts, startRabbitMQ, useTempDir } from '@msgbricks/test-support';

jest.setTimeout(180_000);

// The built command, as users run it: `npm test` (or `npx tsc -b`) builds it first.
const CLI = join(__dirname, '..', 'dist', 'main.js');
const dir = useTempDir('megabusclt-schedule-');
let rabbit: Broker;
let seq = 0;

beforeAll(async () => {
  rabbit = await startRabbitMQ();
});
afterAll(async () => {
  await rabbit?.stop();
});

/** A configuration whose steps append `NAME EVENT` to `out`; `at` in seconds before time_scale 0.01. */
function configFile(destination: string, metricsPort?: number): string {
  const out = join(dir.path, 'out');
  const step = (name: string, at: number) =>
    `        - {name: ${name}, at: ${at}, type: command, command: 'echo "${name} $MSG_HEADER_EVENT_ID" >> ${out}'}`;
  const file = join(dir.path, 'megabus.yaml');
  fs.writeFileSync(
    file,
    [
      `servers: 127.0.0.1:${rabbit.ports.stomp}`,
      'auth_method: password',
      `user: ${rabbit.user}`,
      `password: ${rabbit.password}`,
      `state_dir: ${join(dir.path, 'state')}`,
      ...(metricsPort === undefined ? [] : [`metrics: ${metricsPort}`]),
      'plugins:',
      '  powercut:',
      `    destination: ${destination}`,
      '    retry_delay: 0.1',
      '    schedule:',
      '      key: event_id',
      '      time: event_time',
      `      cancel: "state = 'resolved'"`,
      '      time_scale: 0.01',
      '      steps:',
      '        - {at: 0, type: std_log}',
      step('prepare', 100),
      step('warn', 300),
      '        - {name: shutdown, at: 500, type: std_shutdown}',
      '',
    ].join('\n'),
  );
  return file;
}

interface Run {
  child: ChildProcess;
  lines: () => Record<string, unknown>[];
  exited: Promise<number | string | null>;
}

function start(config: string): Run {
  const child = spawn(process.execPath, [CLI, 'run', '--config', config, '--log-format', 'json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const lines = () =>
    err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, exited };
}

function publish(config: string, header: Record<string, string>, body: string): void {
  const args = [
    CLI,
    'publish',
    '--config',
    config,
    ...Object.entries(header).flatMap(([k, v]) => ['--header', `${k}=${v}`]),
    body,
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`megabusclt publish: ${r.status} ${r.stderr}`);
}

async function until(what: string, f: () => boolean, run?: Run): Promise<void> {
  const end = Date.now() + 60_000;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; log: ${JSON.stringify(run?.lines().slice(-20))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const outLines = () => {
  const file = join(dir.path, 'out');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n') : [];
};
const record = (key: string): EventRecord =>
  JSON.parse(fs.readFileSync(join(dir.path, 'state', 'powercut', 'schedule', recordName(key)), 'utf8')) as EventRecord;
const has = (run: Run, msg: string, extra: Record<string, unknown> = {}) =>
  run.lines().some((l) => l.msg === msg && Object.entries(extra).every(([k, v]) => l[k] === v));

describe('megabusclt schedules', () => {
  test('megabusclt schedule - a power-cut schedule across a SIGKILL and restart of megabusclt: done steps not repeated, due ones run', async () => {
    const destination = `/queue/mbs.schedule.${process.pid}.${seq++}`;
    const [metricsPort] = await freePorts(1);
    const config = configFile(destination, metricsPort);
    const first = start(config);
    await until('the plugin to start', () => has(first, 'plugin started'), first);
    const t0 = Date.now();
    publish(config, { destination, event_id: 'pc-1', event_time: String(t0 / 1000), state: 'announced' }, '{"room":"513"}');
    // Killed between two steps: once the prepare step is recorded done (the log line follows the record's write).
    await until('the prepare step', () => has(first, 'step done', { step: 'prepare' }), first);
    expect(outLines()).toEqual(['prepare pc-1']);
    expect(has(first, 'event scheduled', { key: 'pc-1' })).toBe(true);
    expect(
      first.lines().some((l) => l.msg === String(l.msg) && String(l.msg).startsWith('plugin powercut event pc-1 step std_log@0')),
    ).toBe(true);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const r = record('pc-1');
    expect(r.steps.map((s) => [s.name, s.state])).toEqual([
      ['std_log@0', 'done'],
      ['prepare', 'done'],
      ['warn', 'pending'],
      ['shutdown', 'pending'],
    ]);
    // Down past the warn step's time (3 s).
    await until('the warn step to fall due', () => Date.now() > t0 + 3500);
    const second = start(config);
    await until('the schedule to complete', () => has(second, 'event completed', { key: 'pc-1' }), second);
    expect(outLines()).toEqual(['prepare pc-1', 'warn pc-1']);
    const warn = second.lines().find((l) => l.msg === 'step started' && l.step === 'warn');
    expect(warn?.late as number).toBeGreaterThan(0.4); // run at once after the restart, late
    expect(has(second, 'shutdown: dry run (enabled: false), would run: /sbin/shutdown -h +1')).toBe(true);
    expect(record('pc-1')).toMatchObject({ state: 'completed' });
    expect(record('pc-1').steps.map((s) => [s.name, s.state, s.attempts])).toEqual([
      ['std_log@0', 'done', 1],
      ['prepare', 'done', 1],
      ['warn', 'done', 1],
      ['shutdown', 'done', 1],
    ]);
    // The second run's figures: the two steps it ran, the event it completed.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain('megabusclt_schedule_steps_total{plugin="powercut",outcome="done"} 2\n');
    expect(metrics).toContain('megabusclt_schedule_events_total{plugin="powercut",outcome="completed"} 1\n');
    expect(metrics).toContain('megabusclt_schedule_events_active{plugin="powercut"} 0\n');
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(has(second, 'schedule statistics', { plugin: 'powercut', stepsDone: 2, completed: 1 })).toBe(true);
  });

  test('megabusclt schedule - the all-clear (state resolved) cancels the steps not yet run', async () => {
    const destination = `/queue/mbs.schedule.${process.pid}.${seq++}`;
    const config = configFile(destination);
    const run = start(config);
    await until('the plugin to start', () => has(run, 'plugin started'), run);
    publish(config, { destination, event_id: 'pc-2', event_time: String(Date.now() / 1000), state: 'announced' }, 'cut');
    await until('the prepare step', () => outLines().includes('prepare pc-2'), run);
    publish(config, { destination, event_id: 'pc-2', state: 'resolved' }, 'all clear');
    await until('the cancellation', () => has(run, 'event cancelled', { key: 'pc-2' }), run);
    await new Promise((r) => setTimeout(r, 4000)); // past the last step's time
    expect(outLines()).toEqual(['prepare pc-2']);
    expect(record('pc-2')).toMatchObject({ state: 'cancelled' });
    expect(record('pc-2').steps.map((s) => s.state)).toEqual(['done', 'done', 'cancelled', 'cancelled']);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });
});
