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

function config(command: string): string {
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
  expect(fs.existsSync(join(dir.path, 'state', 'megabusclt.pid'))).toBe(false);
});
