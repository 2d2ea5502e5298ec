import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { expectUsageError, fill, readAll, stompclt, useTempDir } from './helpers';

const dir = useTempDir();

describe('stompclt - options and configuration', () => {
  test('stompclt - a Config::General file drives the transfer; the command line overrides it', async () => {
    await fill(join(dir.path, 'a'), 6);
    const cfg = join(dir.path, 'stompclt.conf');
    fs.writeFileSync(
      cfg,
      `<incoming-queue>\n  path = ${join(dir.path, 'a')}\n</incoming-queue>\noutgoing-queue = "path=${join(dir.path, 'b')} type=DQN"\nremove = 1\ncount = 2\n`,
    );
    const r = stompclt(['--config', cfg, '--count', '4', '--statistics'], dir.path);
    expect(r.status).toBe(0);
    expect((await readAll(join(dir.path, 'b'), 'DQN')).length).toBe(4);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(2);
  });

  test('stompclt - YAML configuration and --no-remove', async () => {
    await fill(join(dir.path, 'a'), 2);
    const cfg = join(dir.path, 'stompclt.yaml');
    fs.writeFileSync(
      cfg,
      `incoming-queue: "path=${join(dir.path, 'a')}"\noutgoing-queue: "path=${join(dir.path, 'b')}"\nremove: true\n`,
    );
    const r = stompclt(['--cfg', cfg, '--no-remove'], dir.path);
    expect(r.status).toBe(0);
    expect(await new DQS(join(dir.path, 'a')).count()).toBe(2);
    expect((await readAll(join(dir.path, 'b'), 'DQS')).length).toBe(2);
  });

  test('stompclt - a malformed configuration file names file, line and key, exit 2', () => {
    const cfg = join(dir.path, 'bad.conf');
    fs.writeFileSync(
      cfg,
      `incoming-queue = path=${join(dir.path, 'a')}\noutgoing-queue = path=${join(dir.path, 'b')}\ncount = many\nwindow = -3\n`,
    );
    const r = stompclt(['--config', cfg], dir.path);
    expectUsageError(r, new RegExp(`^stompclt: ${cfg.replace(/[.]/g, '\\.')}:3: count: expected an integer`, 'm'));
    expect(r.err).toMatch(new RegExp(`^stompclt: ${cfg.replace(/[.]/g, '\\.')}:4: window: `, 'm'));
    expect(r.err.trim().split('\n').length).toBe(2);
  });

  test('stompclt - bad command-line values: one line per problem, exit 2, no stack trace', () => {
    const r = stompclt(['--incoming-queue', `path=${join(dir.path, 'a')}`, '--count', 'abc', '--duration', 'x'], dir.path);
    expectUsageError(r, /^stompclt: command line: --count: expected an integer >= 0, got "abc"$/m);
    expect(r.err).toMatch(/^stompclt: command line: --duration: /m);
    expect(r.err).toMatch(/no outgoing module/);
  });

  test('stompclt - unknown options and cross-option rules are refused', () => {
    expectUsageError(stompclt(['--bogus'], dir.path), /Unknown argument: bogus/);
    expectUsageError(
      stompclt(
        ['--incoming-queue', `path=${join(dir.path, 'a')}`, '--outgoing-queue', 'type=NULL', '--callback-data', 'a=b'],
        dir.path,
      ),
      /--callback-data: needs callback-code or callback-path/,
    );
    expectUsageError(stompclt(['--status'], dir.path), /--status: needs pidfile/);
  });

  test('stompclt - an option given without its value exits 2 with a usage message', () => {
    const r = stompclt(['--outgoing-queue', `path=${join(dir.path, 'b')}`, '--incoming-queue'], dir.path);
    expectUsageError(r, /^stompclt: --incoming-queue needs a value \(see stompclt --help for the options\)$/m);
    expectUsageError(
      stompclt(['--incoming-queue', `path=${join(dir.path, 'a')}`, '--window'], dir.path),
      /--window needs a value/,
    );
  });

  test('stompclt - a broker that cannot be reached fails clearly (exit 1, no stack trace)', () => {
    const r = stompclt(
      ['--incoming-queue', `path=${join(dir.path, 'a')}`, '--outgoing-broker-uri', 'tcp://127.0.0.1:1'],
      dir.path,
    );
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/transfer failed .*cannot connect to tcp:\/\/127\.0\.0\.1:1 \(1 attempt\)/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  test('stompclt - a bad broker URI is bad input (exit 2)', () => {
    const r = stompclt(['--incoming-queue', `path=${join(dir.path, 'a')}`, '--outgoing-broker-uri', 'failover:()'], dir.path);
    expect(r.status).toBe(2);
  });

  test('stompclt - credentials are masked in logs (--log-format json, -dddd dumps the configuration)', () => {
    const r = stompclt(
      [
        '--incoming-queue',
        `path=${join(dir.path, 'a')}`,
        '--outgoing-broker-uri',
        'tcp://127.0.0.1:1',
        '--outgoing-broker-auth',
        'plain name=guest pass=s3cr3t',
        '--log-format',
        'json',
        '-dddd',
      ],
      dir.path,
    );
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/"msg":"configuration"/);
    expect(r.err).toMatch(/guest/);
    expect(r.err).not.toMatch(/s3cr3t/);
  });

  test('stompclt - --help (-h), --version, --list', () => {
    const h = stompclt(['-h'], dir.path);
    expect(h.status).toBe(0);
    expect(h.out).toMatch(/^usage: stompclt/);
    expect(h.out).toMatch(/-c, --count/);
    expect(stompclt(['--version'], dir.path).out).toMatch(/^stompclt \(msgbricks\) \d+\.\d+\.\d+\n$/);
    const l = stompclt(['-l'], dir.path);
    expect(l.out.split('\n')).toContain('incoming-queue');
    expect(stompclt(['-m'], dir.path).out).toMatch(/docs\/stompclt\.md/);
  });
});
