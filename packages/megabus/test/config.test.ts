import * as fs from 'node:fs';
import { join } from 'node:path';
import { CONFIG_ENV, findConfigFile, loadConfig } from '@msgbricks/megabus';
import { useTempDir } from '@msgbricks/test-support';
import { problemsOf, writer } from './helpers/config';

const dir = useTempDir('megabus-config-');

const write = writer(() => dir.path);

describe('megabus config', () => {
  test('config - the same settings in YAML, JSON and Apache style give the same configuration', () => {
    write('certs/cert.pem', 'x');
    write('certs/key.pem', 'x');
    const yaml = write(
      'a/megabus.yaml',
      [
        'server: mb.example.org',
        'port: 61123',
        'cert: ../certs/cert.pem',
        'key: ../certs/key.pem',
        'destination: /topic/roger',
        'resolve_interval: 30',
        'publisher:',
        '  spool: spool',
        '  send_to_all: yes',
        'consumer:',
        '  prefetch: 10',
        '  drain_quiet: 2.5',
        '',
      ].join('\n'),
    );
    const json = write(
      'b/megabus.json',
      JSON.stringify({
        server: 'mb.example.org',
        port: 61123,
        cert: '../certs/cert.pem',
        key: '../certs/key.pem',
        destination: '/topic/roger',
        resolve_interval: '30',
        publisher: { spool: 'spool', send_to_all: true },
        consumer: { prefetch: 10, drain_quiet: 2.5 },
      }),
    );
    const conf = write(
      'c/megabus.conf',
      [
        'server mb.example.org',
        'port 61123',
        'cert ../certs/cert.pem',
        'key ../certs/key.pem',
        'destination /topic/roger',
        'resolve_interval 30',
        '<publisher>',
        '  spool spool',
        '  send_to_all on',
        '</publisher>',
        '<consumer>',
        '  prefetch 10',
        '  drain_quiet 2.5',
        '</consumer>',
        '',
      ].join('\n'),
    );
    const [a, b, c] = [yaml, json, conf].map((file) => loadConfig({ file }));
    const strip = (x: typeof a) => ({ ...x, file: undefined, publisher: { ...x.publisher, spool: undefined } });
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).toEqual(strip(a));
    expect(a.publisher.spool).toBe(join(dir.path, 'a/spool'));
    expect(a).toMatchObject({
      protocol: 'stomp',
      tls: true,
      brokers: { alias: 'mb.example.org', port: 61123, multiple: true },
      auth: { method: 'x509', cert: join(dir.path, 'certs/cert.pem'), key: join(dir.path, 'certs/key.pem') },
      resolveInterval: 30_000,
      receiptTimeout: 30_000,
      publisher: { sendToAll: true, persistent: true, reconnectInterval: 600_000 },
      consumer: { prefetch: 10, drainQuiet: 2500 },
    });
  });

  test('config - every problem is reported at once, each with its file, line and key', () => {
    const file = write(
      'megabus.yaml',
      [
        'server: mb.example.org', // 1
        'port: 70000', // 2
        'protocol: mqtt', // 3
        'auth_method: password', // 4
        'user: alice', // 5
        'use_multiple_brokers: perhaps', // 6
        'colour: blue', // 7
        'cert: /nowhere/cert.pem', // 8
        'publisher:', // 9
        '  send_to_all: 3', // 10
        '  spol: x', // 11
        'consumer: 12', // 12
        '',
      ].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ file }));
    expect(problems).toEqual([
      `${file}:2: port: expected an integer from 1 to 65535, got 70000`,
      `${file}:3: protocol: expected stomp or amqp, got "mqtt"`,
      `${file}:4: password: missing: auth_method password needs password`,
      `${file}:6: use_multiple_brokers: expected a boolean (true/false, yes/no, on/off, 1/0), got "perhaps"`,
      `${file}:7: colour: unknown key`,
      `${file}:8: cert: only used with auth_method x509`,
      `${file}:10: publisher.send_to_all: expected a boolean (true/false, yes/no, on/off, 1/0), got 3`,
      `${file}:11: publisher.spol: unknown key`,
      `${file}:12: consumer: expected a block of settings`,
    ]);
  });

  test('config - Apache style: lines are right, x509 needs TLS and readable files, a repeated key is refused', () => {
    const file = write(
      'megabus.conf',
      ['# brokers', 'servers mb1:61613 mb2', 'servers [::1]:61613', 'tls off', 'port 61613', 'port 61614', ''].join('\n'),
    );
    const problems = problemsOf(() => loadConfig({ file }));
    expect(problems).toEqual([
      `${file}:4: tls: auth_method x509 needs TLS (a client certificate is only presented over TLS)`,
      `${file}:6: port: given more than once (first at ${file}:5)`,
      `${file}: cert: cannot read the x509 certificate: ENOENT /etc/grid-security/hostcert.pem (the default)`,
      `${file}: key: cannot read the x509 key: ENOENT /etc/grid-security/hostkey.pem (the default)`,
    ]);
  });

  test('config - a static list of brokers, user and password without TLS, AMQP 1.0', () => {
    const file = write(
      'megabus.json',
      JSON.stringify({
        servers: ['mb1:5673', 'mb2', '[::1]:5674'],
        protocol: 'amqp',
        auth_method: 'password',
        user: 'u',
        password: 'p',
      }),
    );
    const c = loadConfig({ file });
    expect(c).toMatchObject({
      protocol: 'amqp',
      tls: false,
      auth: { method: 'password', user: 'u', password: 'p' },
      brokers: {
        port: 5672,
        servers: [{ host: 'mb1', port: 5673 }, { host: 'mb2' }, { host: '::1', port: 5674 }],
      },
    });
  });

  test('config - the search: MEGABUS_CONFIG, then the working directory, then the system directory', () => {
    const cwd = join(dir.path, 'cwd');
    const sys = join(dir.path, 'etc');
    fs.mkdirSync(cwd);
    const inSys = write('etc/megabus.conf', 'server a\n');
    expect(findConfigFile({ env: {}, cwd, systemDir: sys })).toBe(inSys);
    const inCwd = write('cwd/megabus.json', '{}');
    expect(findConfigFile({ env: {}, cwd, systemDir: sys })).toBe(inCwd);
    expect(findConfigFile({ env: { [CONFIG_ENV]: '/x/y.yaml' }, cwd, systemDir: sys })).toBe('/x/y.yaml');
    write('cwd/megabus.yaml', '{}');
    expect(problemsOf(() => findConfigFile({ env: {}, cwd, systemDir: sys }))).toEqual([
      `${cwd}: more than one Megabus configuration: ${cwd}/megabus.yaml, ${cwd}/megabus.json; keep one`,
    ]);
    const empty = join(dir.path, 'empty');
    fs.mkdirSync(empty);
    expect(problemsOf(() => findConfigFile({ env: {}, cwd: empty, systemDir: empty }))[0]).toMatch(
      /^megabus: no configuration found: set MEGABUS_CONFIG to a file/,
    );
  });
});
