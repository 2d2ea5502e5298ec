// The `*-broker-*` options make the same settings and the same log lines whatever the protocol: operators (and the
// agents' interop tests, which grep these lines) read one vocabulary.

import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';
import { pino } from 'pino';
import { brokerEvents, brokerSettings, brokerTls, makeBrokerOutgoing, protocolLogger } from '../src/brokers';
import type { AgentOptions } from '../src/config/schema';
import type { BrokerMetrics } from '../src/metrics';

function capture(level = 'debug') {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level, base: undefined, timestamp: false }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

/** The options of one side, as loadOptions leaves them (only what the broker settings read). */
function options(uri: string | undefined, more: Record<string, unknown> = {}): AgentOptions {
  return {
    'outgoing-broker-uri': uri,
    'outgoing-broker-auth': [],
    'heart-beat': false,
    'timeout-client': 60,
    'timeout-server': 10,
    'timeout-connect': 5,
    'timeout-flush': 60,
    'timeout-disconnect': 2,
    ...more,
  } as unknown as AgentOptions;
}

const reconnect = { 'outgoing-broker-reconnect': { 'max-attempts': 3, 'initial-delay': 0.5, 'max-delay': 4, multiplier: 1.5 } };

test('brokers - the settings of a side: reconnection and time-outs in milliseconds, heart-beats with --heart-beat', () => {
  const s = brokerSettings(options('failover:(tcp://a:1,tcp://b:2)', reconnect), 'outgoing', STOMP_PROTOCOL);
  expect(s).toMatchObject({
    uri: 'failover:(tcp://a:1,tcp://b:2)',
    auth: [],
    reconnect: { initialDelay: 500, maxDelay: 4000, multiplier: 1.5, maxAttempts: 3 },
    connectTimeout: 5000,
    flushTimeout: 60_000,
    disconnectTimeout: 2000,
    heartBeat: undefined,
    tls: undefined,
  });
  expect(brokerSettings(options('amqp://a', { 'heart-beat': true }), 'outgoing', AMQP_PROTOCOL).heartBeat).toEqual([
    60_000, 10_000,
  ]);
  // The connection applies the reconnection settings to the URI, the first connection's attempts included.
  const out = makeBrokerOutgoing(options('failover:(amqp://a:1,amqp://b:2)', reconnect)) as unknown as {
    connection: { uri: unknown };
  };
  expect(out.connection.uri).toMatchObject({ maxReconnectAttempts: 3, initialReconnectDelay: 500, maxReconnectDelay: 4000 });
});

test('brokers - a --loop daemon keeps trying its first connection to a plain URI; a one-shot run tries once', () => {
  const first = (more: Record<string, unknown>) =>
    (makeBrokerOutgoing(options('stomp://a:1', more)) as unknown as { connection: { uri: { maxReconnectAttempts: number } } })
      .connection.uri.maxReconnectAttempts;
  expect(first({})).toBe(0);
  expect(first({ loop: true })).toBe(-1);
  // An explicit bound wins over the daemon's default.
  expect(first({ loop: true, 'outgoing-broker-reconnect': { 'max-attempts': 2 } })).toBe(2);
});

test('brokers - socket options: the IO::Socket::SSL ones become TLS settings, the others are ignored with a warning', () => {
  const { logger, lines } = capture();
  const sockopts = {
    'outgoing-broker-sockopts': { SSL_ca_file: '/ca.pem', SSL_verify_mode: 'SSL_VERIFY_NONE', SO_KEEPALIVE: '1' },
  };
  expect(brokerTls(options('ssl://a:1', sockopts), 'outgoing', logger)).toEqual({ ca: ['/ca.pem'], verify: false });
  expect(lines).toEqual([{ level: 40, option: 'outgoing-broker-sockopts', key: 'SO_KEEPALIVE', msg: 'socket option ignored' }]);
});

test('brokers - what cannot be used is an option error naming the option', () => {
  const refused = (o: AgentOptions, key: string, re: RegExp) =>
    expect(() => makeBrokerOutgoing(o)).toThrow(
      expect.objectContaining({
        code: 'ERR_TRANSFER_OPTIONS',
        message: expect.stringMatching(new RegExp(`^${key}: ${re.source}`)),
      }),
    );
  refused(options('http://a:1'), 'outgoing-broker-uri', /unsupported scheme "http"/);
  refused(options('amqp://a:1'.replace('amqp', 'udp')), 'outgoing-broker-uri', /unsupported scheme "udp"/);
  refused(options('failover:(amqp://a,stomp://b)'), 'outgoing-broker-uri', /a failover list mixes/);
  refused(
    options('amqp://a', { 'outgoing-broker-auth': ['plain pass=x'] }),
    'outgoing-broker-auth',
    /plain credential without name/,
  );
  refused(
    options('tcp://a', { 'outgoing-broker-auth': [{ scheme: 'x509', cert: '/c.pem', key: '/k.pem' }] }),
    'outgoing-broker-auth',
    /an x509 credential needs TLS/,
  );
  refused(
    options('ssl://a', { 'outgoing-broker-sockopts': { SSL_ca_file: '/none/ca.pem' } }),
    'outgoing-broker',
    /cannot read the TLS CA/,
  );
  expect(() => makeBrokerOutgoing(options(undefined))).toThrow('no outgoing broker URI');
});

test('brokers - options a protocol does not use are ignored with a warning', () => {
  const { logger, lines } = capture();
  const o = options('amqp://a', { 'outgoing-broker-connect': { 'client-id': 'x' }, 'outgoing-broker-type': 'RabbitMQ' });
  makeBrokerOutgoing(o, logger);
  expect(lines).toEqual([
    { level: 40, option: 'outgoing-broker-connect', msg: 'not an option of AMQP 1.0 brokers: ignored' },
    { level: 40, option: 'outgoing-broker-type', msg: 'not an option of AMQP 1.0 brokers: ignored' },
  ]);
  lines.length = 0;
  makeBrokerOutgoing(options('stomp://a', { 'outgoing-broker-connect': { 'client-id': 'x' } }), logger);
  expect(lines).toEqual([]);
});

test('brokers - connection events give the same log lines (AMQP adds the SASL mechanism) and count reconnections', () => {
  const reconnected: string[] = [];
  const metrics = { reconnected: (side: string) => reconnected.push(side) } as unknown as BrokerMetrics;
  const error = new Error('refused');
  const stomp = capture();
  const onStomp = brokerEvents('outgoing', STOMP_PROTOCOL, stomp.logger, metrics, false);
  onStomp({ type: 'connect-failed', server: 'tcp://a:1', error } as { type: string });
  onStomp({ type: 'connected', server: 'tcp://a:1', brokerType: 'RabbitMQ', version: '1.2' } as { type: string });
  onStomp({ type: 'lost', error } as { type: string });
  onStomp({ type: 'reconnected', server: 'tcp://a:1' } as { type: string });
  const amqp = capture();
  const onAmqp = brokerEvents('outgoing', AMQP_PROTOCOL, amqp.logger, metrics, false);
  onAmqp({ type: 'connect-failed', server: 'amqp://a:1', error } as { type: string });
  onAmqp({ type: 'connected', server: 'amqp://a:1', brokerType: 'RabbitMQ', version: '3.10', mechanism: 'PLAIN' } as {
    type: string;
  });
  onAmqp({ type: 'lost', error } as { type: string });
  onAmqp({ type: 'reconnected', server: 'amqp://a:1' } as { type: string });
  onAmqp({ type: 'link-error', address: '/queue/x', error } as { type: string });
  expect(stomp.lines).toEqual([
    { level: 40, side: 'outgoing', server: 'tcp://a:1', err: 'refused', msg: 'cannot connect to the broker' },
    { level: 30, side: 'outgoing', server: 'tcp://a:1', type: 'RabbitMQ', version: '1.2', msg: 'connected to the broker' },
    { level: 40, side: 'outgoing', err: 'refused', msg: 'broker connection lost: reconnecting' },
    { level: 30, side: 'outgoing', server: 'tcp://a:1', msg: 'broker connection back' },
  ]);
  expect(amqp.lines).toEqual([
    { level: 40, side: 'outgoing', server: 'amqp://a:1', err: 'refused', msg: 'cannot connect to the broker' },
    {
      level: 30,
      side: 'outgoing',
      server: 'amqp://a:1',
      type: 'RabbitMQ',
      version: '3.10',
      sasl: 'PLAIN',
      msg: 'connected to the broker',
    },
    { level: 40, side: 'outgoing', err: 'refused', msg: 'broker connection lost: reconnecting' },
    { level: 30, side: 'outgoing', server: 'amqp://a:1', msg: 'broker connection back' },
    { level: 40, side: 'outgoing', address: '/queue/x', err: 'refused', msg: 'broker refused or dropped a link' },
  ]);
  expect(reconnected).toEqual(['outgoing', 'outgoing']);
});

test('brokers - STOMP debug events become debug lines, shown without --debug, credentials never logged', () => {
  const { logger, lines } = capture('info');
  const on = brokerEvents('outgoing', STOMP_PROTOCOL, logger, undefined, true);
  const event = (e: Record<string, unknown>) => on(e as { type: string });
  event({
    type: 'frame',
    direction: 'out',
    command: 'CONNECT',
    headers: { login: 'someone', passcode: 's3cr3t', host: '/' },
    bodyLength: 0,
  });
  event({ type: 'frame', direction: 'in', command: 'MESSAGE', bodyLength: 300, body: 'x'.repeat(200), truncated: true });
  event({ type: 'io', direction: 'in', bytes: 42 });
  event({ type: 'debug', what: 'connection', text: 'sending DISCONNECT' });
  expect(lines.map((l) => [l.level, l.side, l.msg])).toEqual([
    [20, 'outgoing', 'STOMP frame sent'],
    [20, 'outgoing', 'STOMP frame received'],
    [20, 'outgoing', 'STOMP bytes read'],
    [20, 'outgoing', 'STOMP connection: sending DISCONNECT'],
  ]);
  expect(lines[0]).toMatchObject({ command: 'CONNECT', bodyLength: 0, headers: { login: '***', passcode: '***', host: '/' } });
  expect(lines[1]).toMatchObject({ command: 'MESSAGE', bodyLength: 300, body: `${'x'.repeat(200)}...` });
  expect(JSON.stringify(lines)).not.toMatch(/someone|s3cr3t/);
  // The command's own level stays.
  logger.debug('not shown');
  expect(lines).toHaveLength(4);
});

test("brokers - with debug words a logger already at trace (-dd) keeps its level; without, the level is the command's", () => {
  expect(protocolLogger(capture('trace').logger, 'incoming', true).level).toBe('trace');
  expect(protocolLogger(capture('warn').logger, 'incoming', true).level).toBe('debug');
  expect(protocolLogger(capture('warn').logger, 'incoming', false).level).toBe('warn');
});
