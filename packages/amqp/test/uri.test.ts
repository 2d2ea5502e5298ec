import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerUriError } from '@msgbricks/agent';
import { parseAmqpUri } from '@msgbricks/amqp';
import { removeDir, tempDir } from '@msgbricks/test-support';

test('amqp uri - plain and TLS URIs, default ports, a single attempt', () => {
  expect(parseAmqpUri('amqp://broker.example:5673')).toEqual({
    servers: [{ host: 'broker.example', port: 5673, ssl: false, vhost: undefined, uri: 'amqp://broker.example:5673' }],
    randomize: false,
    initialReconnectDelay: 10,
    maxReconnectDelay: 30000,
    backOffMultiplier: 2,
    useExponentialBackOff: true,
    maxReconnectAttempts: 0,
    failover: false,
  });
  expect(parseAmqpUri('amqp://h').servers[0]).toMatchObject({ host: 'h', port: 5672, ssl: false });
  expect(parseAmqpUri('amqps://h').servers[0]).toMatchObject({ host: 'h', port: 5671, ssl: true });
  expect(parseAmqpUri('AMQPS://h:1').servers[0]).toMatchObject({ port: 1, ssl: true });
  // python-amqpclt's regular expression takes tcp:// too; ssl:// as in stompclt.
  expect(parseAmqpUri('tcp://h').servers[0]).toMatchObject({ port: 5672, ssl: false });
  expect(parseAmqpUri('ssl://h').servers[0]).toMatchObject({ port: 5671, ssl: true });
  expect(parseAmqpUri('amqp://[::1]:7').servers[0]).toMatchObject({ host: '::1', port: 7 });
  expect(parseAmqpUri('  amqp://h:1  ').servers[0]?.uri).toBe('amqp://h:1');
});

test('amqp uri - the /vhost path: exposed percent-decoded, empty or / means the default', () => {
  const vhost = (u: string) => parseAmqpUri(u).servers[0]?.vhost;
  expect(vhost('amqp://h:5672/prod')).toBe('prod');
  expect(vhost('amqp://h/with%20space')).toBe('with space');
  expect(vhost('amqp://h/a%2Fb')).toBe('a/b');
  expect(vhost('amqp://h/')).toBeUndefined();
  expect(vhost('amqp://h/%2F')).toBeUndefined();
  expect(vhost('amqp://h')).toBeUndefined();
  expect(() => parseAmqpUri('amqp://h/a/b')).toThrow(/write a \/ inside it as %2F/);
  expect(() => parseAmqpUri('amqp://h/%zz')).toThrow(/invalid percent-encoding/);
});

test('amqp uri - failover lists with the STOMP module options and defaults', () => {
  const d = parseAmqpUri('failover:(amqp://a:1,amqps://b/v,tcp://c)');
  expect(d.servers.map((s) => [s.host, s.port, s.ssl, s.vhost])).toEqual([
    ['a', 1, false, undefined],
    ['b', 5671, true, 'v'],
    ['c', 5672, false, undefined],
  ]);
  expect(d).toMatchObject({
    randomize: true,
    initialReconnectDelay: 10,
    maxReconnectDelay: 30000,
    backOffMultiplier: 2,
    useExponentialBackOff: true,
    maxReconnectAttempts: -1,
    failover: true,
  });
  expect(
    parseAmqpUri(
      'failover:(amqp://a:1,amqp://b:2)?randomize=false&initialReconnectDelay=100&maxReconnectDelay=5000&backOffMultiplier=3&useExponentialBackOff=no&maxReconnectAttempts=7&unknown=1',
    ),
  ).toMatchObject({
    randomize: false,
    initialReconnectDelay: 100,
    maxReconnectDelay: 5000,
    backOffMultiplier: 3,
    useExponentialBackOff: false,
    maxReconnectAttempts: 7,
  });
  expect(parseAmqpUri('failover:amqp://a:1').servers).toHaveLength(1);
});

test('amqp uri - errors are BrokerUriError with code ERR_BROKER_URI and say what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['', /empty broker URI/],
    ['stomp://h:1', /unsupported scheme "stomp"/],
    ['amqp://guest:guest@h', /holds credentials: give them as auth/],
    ['amqp://h:1?heartbeat=10', /has a query or fragment/],
    ['amqp://h:0', /invalid port 0/],
    ['amqp://h:70000', /invalid port 70000/],
    ['amqp:/h', /expected amqp:\/\/host\[:port\]\[\/vhost\]/],
    ['failover:()', /invalid failover URI|lists no broker/],
    ['failover:(amqp://a)?randomize=perhaps', /randomize=perhaps: expected true or false/],
    ['failover:(amqp://a)?maxReconnectAttempts=-2', /expected a number >= -1/],
    ['failover:(amqp://a,http://b)', /unsupported scheme "http".* in failover/],
  ];
  for (const [uri, re] of cases) {
    let err: unknown;
    try {
      parseAmqpUri(uri);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BrokerUriError);
    expect(err).toMatchObject({ code: 'ERR_BROKER_URI', name: 'BrokerUriError' });
    expect([uri, (err as Error).message]).toEqual([uri, expect.stringMatching(re)]);
  }
});

describe('amqp uri - file:', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('amqp-uri-');
  });
  afterEach(() => removeDir(dir));

  function file(name: string, text: string): string {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  }

  test('amqp uri - file: lists one URI per line (# comments) as a failover list with the default settings', () => {
    const p = file('brokers', '# production\namqp://a:1/prod # the first\n\n  amqps://b\n');
    const list = parseAmqpUri(`file:${p}`);
    expect(list.servers).toEqual([
      { host: 'a', port: 1, ssl: false, vhost: 'prod', uri: 'amqp://a:1/prod' },
      { host: 'b', port: 5671, ssl: true, vhost: undefined, uri: 'amqps://b' },
    ]);
    expect(list).toMatchObject({ randomize: true, maxReconnectAttempts: -1, failover: true });
  });

  test('amqp uri - file: with one line is that URI: a plain one keeps a single attempt, a failover one its options', () => {
    expect(parseAmqpUri(`file:${file('one', 'amqp://h\n')}`)).toMatchObject({
      servers: [{ host: 'h', port: 5672 }],
      maxReconnectAttempts: 0,
      failover: false,
    });
    expect(
      parseAmqpUri(`file:${file('fo', 'failover:(amqp://a,amqp://b)?randomize=false&maxReconnectAttempts=3\n')}`),
    ).toMatchObject({
      servers: [{ host: 'a' }, { host: 'b' }],
      randomize: false,
      maxReconnectAttempts: 3,
      failover: true,
    });
  });

  test('amqp uri - file: errors are BrokerUriError and name the file', () => {
    const missing = join(dir, 'missing');
    const empty = file('empty', '# none yet\n');
    const mixed = file('mixed', 'amqp://a\nfailover:(amqp://b)\n');
    const bad = file('bad', 'amqp://a\nstomp://b\n');
    const refused = (path: string) => () => parseAmqpUri(`file:${path}`);
    for (const path of [missing, empty, mixed, bad]) expect(refused(path)).toThrow(BrokerUriError);
    expect(refused(missing)).toThrow(new RegExp(`^cannot read broker URI file ${missing}: ENOENT`));
    expect(refused(empty)).toThrow(`broker URI file ${empty} lists no broker`);
    expect(refused(mixed)).toThrow(`broker URI file ${mixed}: a failover URI must be alone in the file`);
    expect(refused(bad)).toThrow(
      `unsupported scheme "stomp" in broker URI "stomp://b" in ${bad}: expected amqp, amqps, tcp or ssl`,
    );
  });
});
