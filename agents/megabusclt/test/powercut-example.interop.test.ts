/**
 * spool-examples/megabus-powercut as its README runs it (run.sh), against a private RabbitMQ: the announcement
 * published, the schedule run in seconds (time_scale 0.01): the log line, the preparation script, the e-mail, the
 * shutdown's dry run; and with CANCEL_AFTER, the all-clear cancelling the rest.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { type EventRecord, recordName } from '@msgbricks/megabus';
import { type Broker, startRabbitMQ, useTempDir } from '@msgbricks/test-support';

jest.setTimeout(180_000);

const RUN = resolve(__dirname, '../../../spool-examples/megabus-powercut/run.sh');
const dir = useTempDir('megabus-powercut-');
let rabbit: Broker;
let run: ChildProcess | undefined;

beforeAll(async () => {
  rabbit = await startRabbitMQ();
});
afterEach(async () => {
  if (run !== undefined && run.exitCode === null && run.signalCode === null) {
    const exited = new Promise((r) => run?.once('exit', r));
    process.kill(-(run.pid as number), 'SIGTERM');
    await exited;
  }
  run = undefined;
});
afterAll(async () => {
  await rabbit?.stop();
});

function start(env: Record<string, string>): { output: () => string } {
  let output = '';
  run = spawn(RUN, [], {
    detached: true, // its own process group: run.sh, megabusclt and megabusclt publish are stopped together
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      WORK: dir.path,
      BROKER_HOST: rabbit.host,
      BROKER_STOMP_PORT: String(rabbit.ports.stomp),
      BROKER_USER: rabbit.user,
      BROKER_PASSWORD: rabbit.password,
      ...env,
    },
  });
  run.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  run.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  return { output: () => output };
}

const record = (key: string): EventRecord | undefined => {
  const file = join(dir.path, 'state', 'powercut', 'schedule', recordName(key));
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as EventRecord) : undefined;
};
const read = (name: string) => (fs.existsSync(join(dir.path, name)) ? fs.readFileSync(join(dir.path, name), 'utf8') : '');

async function until(what: string, f: () => boolean, output: () => string): Promise<void> {
  const end = Date.now() + 90_000;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
    if (run?.exitCode !== null) throw new Error(`run.sh exited ${run?.exitCode} waiting for ${what}; output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('megabus power-cut example', () => {
  test('powercut example - run.sh: announced, logged, prepared, e-mailed, shutdown dry run, in seconds', async () => {
    const { output } = start({ TIME_SCALE: '0.01', EVENT_ID: 'pc-example' });
    await until('the schedule to complete', () => record('pc-example')?.state === 'completed', output);
    const r = record('pc-example') as EventRecord;
    expect(r.steps.map((s) => [s.name, s.state, s.attempts])).toEqual([
      ['announce', 'done', 1],
      ['prepare', 'done', 1],
      ['warn', 'done', 1],
      ['shutdown', 'done', 1],
    ]);
    // The steps 1.2 s apart, from the announcement's event time.
    expect(r.steps.map((s) => ((s.due - (r.time as number)) / 1000).toFixed(1))).toEqual(['0.0', '1.2', '2.4', '3.6']);
    expect(read('prepare.log')).toMatch(/^\S+ prepare: event pc-example room 513: stopping batch jobs, syncing disks\n$/);
    expect(read('outbox')).toContain('To: ops@example.org\nSubject: [megabus] powercut: event pc-example, step warn\n');
    expect(output()).toContain('shutdown: dry run (enabled: false), would run: /sbin/shutdown -h +1');
    // std_log: one line naming the event and the step, with the header fields the step chose (not the broker's).
    const announce = output()
      .split('\n')
      .find((l) => l.includes('info: plugin powercut event pc-example step announce due '));
    expect(announce).toMatch(/ plugin=powercut key=pc-example step=announce header=\{.*"room":"513".*\}$/);
    expect(announce).toContain('"event_id":"pc-example"');
    expect(announce).not.toContain('message-id');
  });

  test('powercut example - run.sh with CANCEL_AFTER: the all-clear cancels what is left', async () => {
    // time_scale 0.05: the preparation at 6 s, well after the all-clear (0.5 s, plus a megabusclt publish's start).
    const { output } = start({ TIME_SCALE: '0.05', EVENT_ID: 'pc-cancel', CANCEL_AFTER: '0.5' });
    await until('the cancellation', () => record('pc-cancel')?.state === 'cancelled', output);
    const r = record('pc-cancel') as EventRecord;
    const prepareDue = r.steps[1].due;
    await until('the preparation time to pass', () => Date.now() > prepareDue + 500, output);
    expect(record('pc-cancel')?.steps.map((s) => s.state)).toEqual(['done', 'cancelled', 'cancelled', 'cancelled']);
    expect(read('prepare.log')).toBe('');
    expect(read('outbox')).toBe('');
  });
});
