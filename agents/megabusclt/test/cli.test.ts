import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

// The built command, as users run it: `npm test` (or `npx tsc -b`) builds it first.
const CLI = join(__dirname, '..', 'dist', 'main.js');
const dir = useTempDir('megabusclt-');

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npx tsc -b first`);
});

function megabusclt(args: string[], input?: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: dir.path,
    env: { ...process.env, MEGABUS_CONFIG: '', ...env },
    input,
    timeout: 30_000,
  });
  return { status: r.status, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
}

function write(name: string, text: string): string {
  const file = join(dir.path, name);
  fs.writeFileSync(file, text);
  return file;
}

// A name under .invalid never resolves (RFC 6761): no broker is reachable, without waiting for a time-out.
const NOWHERE = ['server mb.invalid', 'auth_method password', 'user u', 'password secret', 'destination /queue/x'];

describe('megabusclt', () => {
  test('megabusclt check - prints the configuration resolved, every default filled in, the password masked', () => {
    write('megabus.conf', `${NOWHERE.join('\n')}\n`);
    const r = megabusclt(['check']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain('server: mb.invalid\nport: 61613\nprotocol: stomp\nuse_multiple_brokers: true\ntls: false\n');
    expect(r.out).toContain('password: "***"\n');
    expect(r.out).not.toContain('secret');
    expect(r.out).toContain('publisher:\n  send_to_all: false\n  reconnect_interval: 600\n  persistent: true\n');
  });

  test('megabusclt check - the plugins resolved: defaults filled in, paths absolute, action timeouts', () => {
    const file = write(
      'plugins.yaml',
      `${NOWHERE.map((l) => l.replace(' ', ': ')).join('\n')}\nstate_dir: state\nplugins:\n  roger:\n    on_change: {key: host, field: state}\n    actions:\n      - {type: command, command: ./set-mode}\n`,
    );
    const r = megabusclt(['check', '--config', file]);
    expect(r).toMatchObject({ status: 0, err: '' });
    expect(r.out).toContain(
      [
        `state_dir: ${join(dir.path, 'state')}`,
        'plugins:',
        '  roger:',
        '    destination: /queue/x',
        '    max_attempts: 5',
        `    dead_letter: ${join(dir.path, 'state', 'roger', 'dead-letter')}`,
        '    retry_delay: 1',
        '    retry_delay_max: 30',
        '    timeout: 60',
        '    concurrency: 1',
        '    on_change:',
        '      key: host',
        '      field: state',
        '    actions:',
        '      - type: command',
        '        command: ./set-mode',
        '        timeout: 60',
        '',
      ].join('\n'),
    );
  });

  test('megabusclt check - every configuration problem on its own line with file, line and key, exit 2', () => {
    const file = write('bad.yaml', 'server: a b\nport: x\ncolour: red\n');
    const r = megabusclt(['check', '--config', file]);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.split('\n').slice(0, 3)).toEqual([
      `${file}:1: server: expected a host name, got "a b" (the port is port)`,
      `${file}:2: port: expected an integer from 1 to 65535, got "x"`,
      `${file}:3: colour: unknown key`,
    ]);
  });

  test('megabusclt - usage errors exit 2 with one line', () => {
    expect(megabusclt(['frobnicate'])).toMatchObject({ status: 2, err: 'megabusclt: Unknown argument: frobnicate\n' });
    write('megabus.conf', `${NOWHERE.join('\n')}\n`);
    const r = megabusclt(['publish', '--header', 'novalue', 'body']);
    expect(r).toMatchObject({ status: 2, err: 'megabusclt: invalid --header "novalue": expected name=value\n' });
  });

  test('megabusclt run - a plugin problem: every one with file, line and key, exit 2; no plugin at all: exit 2', () => {
    const file = write(
      'bad.yaml',
      `${NOWHERE.map((l) => l.replace(' ', ': ')).join('\n')}\nplugins:\n  p:\n    actions:\n      - type: mail\n`,
    );
    const r = megabusclt(['--config', file]);
    expect(r).toMatchObject({
      status: 2,
      out: '',
      err: `${file}:9: plugins.p.actions[0].type: expected one of command, http, spool, log, std_log, std_email, std_shutdown, got "mail"\n`,
    });
    const none = write('none.yaml', `${NOWHERE.map((l) => l.replace(' ', ': ')).join('\n')}\n`);
    expect(megabusclt(['run', '--config', none])).toMatchObject({
      status: 2,
      err: `megabusclt: ${none}: no plugin configured (plugins: a name, a destination, actions; see docs/megabus.md)\n`,
    });
    expect(megabusclt(['run', '--config', none, '--metrics', 'x:y'])).toMatchObject({
      status: 2,
      err: 'megabusclt: invalid --metrics "x:y": expected [host:]port\n',
    });
  });

  test('megabusclt publish - no broker and no spool: exit 1 saying why', () => {
    write('megabus.conf', `${NOWHERE.join('\n')}\n`);
    const r = megabusclt(['publish', 'hello']);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/cannot resolve the brokers: .*mb\.invalid/);
    expect(r.err).toMatch(/megabusclt: no broker known\n$/);
  });

  test('megabusclt publish - no broker, a spool: the message from stdin is spooled with its headers, exit 0', async () => {
    write('megabus.conf', `${[...NOWHERE, '<publisher>', '  spool spool', '</publisher>'].join('\n')}\n`);
    const r = megabusclt(
      ['publish', '--header', 'host=disk42', '--header', 'state=draining', '--linger', '0', '-'],
      'from stdin',
    );
    expect(r.status).toBe(0);
    expect(r.err).toMatch(/no broker took the message: spooled as [0-9a-f]{8}\/[0-9a-f]{14}\n/);
    expect(r.err).toMatch(/1 message\(s\) left in the spool .*spool, forwarded by the next run\n$/);
    const files = layout(join(dir.path, 'spool')).filter((f) => !f.endsWith('/'));
    expect(files).toHaveLength(1);
    const q = new DQS(join(dir.path, 'spool'));
    expect(await q.lock(files[0] as string)).toBe(true);
    const m = await q.getMessage(files[0] as string);
    expect(m.header).toEqual({ host: 'disk42', state: 'draining', destination: '/queue/x', persistent: 'true' });
    expect(m.body).toBe('from stdin');
  });
});
