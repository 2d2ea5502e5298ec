/**
 * megabusclt run as users run it, without a broker (the alias never resolves): what a previous run left in a plugin
 * spool is acted on at start, and SIGTERM stops a run whose action hangs within its bounds, the message kept.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const CLI = join(__dirname, '..', 'dist', 'main.js');
const dir = useTempDir('megabusclt-run-');

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -b first`);
});

function config(command: string, extra: string[] = []): string {
  const file = join(dir.path, 'megabus.yaml');
  const lines = [
    'server: mb.invalid',
    'auth_method: password',
    'user: u',
    'password: p',
    'destination: /queue/x',
    'state_dir: state',
    'plugins:',
    '  p:',
    '    actions:',
    '      - type: command',
    `        command: '${command}'`,
    ...extra,
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ELEMENT = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;

test('megabusclt run - SIGTERM with an action hanging: the action is stopped within the bounds, the message stays for the next run', async () => {
  const started = join(dir.path, 'started');
  const file = config(`touch ${started}; exec sleep 60`);
  const queue = join(dir.path, 'state', 'p', 'queue');
  // Left by a previous run: acted on at start, before any broker.
  await new DQS(queue).addMessage(new Message({ header: { host: 'disk42' }, body: 'hang' }));
  const child = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await until('the command running', () => fs.existsSync(started));
  const t0 = Date.now();
  child.kill('SIGTERM');
  expect(await exit).toBe(0);
  // 10 s for the actions in flight, then the command's SIGTERM: well within the 30 s bound.
  expect(Date.now() - t0).toBeLessThan(20_000);
  expect(err).toMatch(/info: stopping: finishing the actions in flight signal=SIGTERM/);
  expect(err).toMatch(
    /info: statistics plugin=p received=0 filtered=0 acted=0 unchanged=0 ignored=0 failed=\d+ retried=\d+ deadLettered=0 inFlight=0 queued=1 brokers=0/,
  );
  expect(err).toMatch(/info: stopped\n$/);
  // The message is in the spool, unlocked (no `.lck`), for the next run; the pid file is gone.
  expect(layout(queue).filter((f) => !f.endsWith('/'))).toEqual([expect.stringMatching(ELEMENT)]);
  // The state_dir lock is released: nothing left beside the state_dir.
  expect(fs.readdirSync(dir.path).sort()).toEqual(['megabus.yaml', 'started', 'state']);
});

test('megabusclt run - a second megabusclt on the same state_dir is refused before it touches the schedule records', async () => {
  const started = join(dir.path, 'started');
  const file = config(`touch ${started}; exec sleep 60`, [
    '    schedule:',
    '      key: host',
    '      steps:',
    '        - {at: 0, type: std_log}',
  ]);
  const state = join(dir.path, 'state');
  await new DQS(join(state, 'p', 'queue')).addMessage(new Message({ header: { host: 'disk42' }, body: 'hang' }));
  const first = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'ignore', 'ignore'] });
  const firstExit = new Promise<number | null>((resolve) => first.on('exit', resolve));
  try {
    await until('the first one running its action', () => fs.existsSync(started));
    // A record the first one is writing at this instant: a second one's start would remove it as a crash's leftover.
    const tmp = join(state, 'p', 'schedule', 'disk42.json.tmp');
    fs.mkdirSync(join(state, 'p', 'schedule'), { recursive: true });
    fs.writeFileSync(tmp, '{"key":"disk42"');
    const before = layout(state);
    // Exit 2, as the transfer commands for a spool another instance holds.
    const second = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    expect(await new Promise<number | null>((resolve) => second.on('exit', resolve))).toBe(2);
    expect(err).toContain(
      `another megabusclt (pid ${first.pid}) is already using ${state} as its state queue (lock ${state}.megabusclt.state.lock)`,
    );
    expect(layout(state)).toEqual(before);
    expect(fs.readFileSync(tmp, 'utf8')).toBe('{"key":"disk42"');
  } finally {
    first.kill('SIGTERM');
    expect(await firstExit).toBe(0);
  }
});
