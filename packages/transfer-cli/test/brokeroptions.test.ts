// The `*-broker-*` options make the same STOMP and AMQP connection settings and the same log lines: operators
// (and the agents' interop tests, which grep these lines) read one vocabulary whatever the protocol.
import type { AgentOptions } from '@msgbricks/agent';
import { type Logger, pino } from 'pino';
import { makeAmqpConnectionOptions } from '../src/amqp';
import type { BrokerMetrics } from '../src/metrics';
import { makeConnectionOptions } from '../src/modules';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug', base: undefined, timestamp: false }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

/** The options of one side, as loadOptions leaves them (only what the connection settings read). */
function options(uri: string, more: Record<string, unknown> = {}): AgentOptions {
  return {
    'outgoing-broker-uri': uri,
    'outgoing-broker-auth': [],
    'heart-beat': false,
    'timeout-client': 60,
    'timeout-server': 60,
    'timeout-connect': 5,
    'timeout-disconnect': 2,
    ...more,
  } as unknown as AgentOptions;
}

const reconnect = { 'outgoing-broker-reconnect': { 'max-attempts': 3, 'initial-delay': 0.5, 'max-delay': 4, multiplier: 1.5 } };
const sockopts = {
  'outgoing-broker-sockopts': { SSL_ca_file: '/ca.pem', SSL_verify_mode: 'SSL_VERIFY_NONE', SO_KEEPALIVE: '1' },
};

test('broker options - reconnection settings go into the URI and the reconnect options, alike for both protocols', () => {
  const stomp = makeConnectionOptions(options('failover:(tcp://a:1,tcp://b:2)', reconnect), 'outgoing');
  const amqp = makeAmqpConnectionOptions(options('failover:(amqp://a:1,amqp://b:2)', reconnect), 'outgoing');
  for (const o of [stomp, amqp]) {
    expect(o.uri).toMatchObject({
      maxReconnectAttempts: 3,
      initialReconnectDelay: 500,
      maxReconnectDelay: 4000,
      randomize: true,
    });
    expect(o.reconnect).toEqual({ initialDelay: 500, maxDelay: 4000, multiplier: 1.5, maxAttempts: 3 });
    expect(o.connectTimeout).toBe(5000);
    expect(o.disconnectTimeout).toBe(2000);
    expect(o.tls).toBeUndefined();
  }
  // Without overrides: the URI's own settings, and nothing forced on the connection.
  const plain = makeAmqpConnectionOptions(options('amqp://a'), 'outgoing');
  expect(plain.uri).toMatchObject({ maxReconnectAttempts: 0, initialReconnectDelay: 10 });
  expect(plain.reconnect).toEqual({
    initialDelay: undefined,
    maxDelay: undefined,
    multiplier: undefined,
    maxAttempts: undefined,
  });
});

test('broker options - socket options: the IO::Socket::SSL ones become TLS settings, the others are ignored with a warning', () => {
  for (const make of [
    (log: Logger) => makeConnectionOptions(options('ssl://a:1', sockopts), 'outgoing', log).tls,
    (log: Logger) => makeAmqpConnectionOptions(options('amqps://a:1', sockopts), 'outgoing', log).tls,
  ]) {
    const { logger, lines } = capture();
    expect(make(logger)).toEqual({ ca: ['/ca.pem'], verify: false });
    expect(lines).toEqual([{ level: 40, option: 'outgoing-broker-sockopts', key: 'SO_KEEPALIVE', msg: 'socket option ignored' }]);
  }
});

test('broker options - a bad URI is an option error naming the option', () => {
  expect(() => makeConnectionOptions(options('http://a:1'), 'outgoing')).toThrow(
    expect.objectContaining({
      code: 'ERR_TRANSFER_OPTIONS',
      message: expect.stringMatching(/^outgoing-broker-uri: unsupported scheme "http"/),
    }),
  );
  expect(() => makeAmqpConnectionOptions(options('http://a:1'), 'outgoing')).toThrow(
    expect.objectContaining({
      code: 'ERR_TRANSFER_OPTIONS',
      message: expect.stringMatching(/^outgoing-broker-uri: unsupported scheme "http"/),
    }),
  );
  expect(() => makeAmqpConnectionOptions(options('amqp://a', { 'outgoing-broker-uri': undefined }), 'outgoing')).toThrow(
    'no outgoing broker URI',
  );
});

test('broker options - connection events give the same log lines (AMQP adds the SASL mechanism) and count reconnections', () => {
  const reconnected: string[] = [];
  const metrics = { reconnected: (side: string) => reconnected.push(side) } as unknown as BrokerMetrics;
  const error = new Error('refused');
  const stomp = capture();
  const onStomp = makeConnectionOptions(options('tcp://a:1'), 'outgoing', stomp.logger, metrics).onEvent;
  onStomp?.({ type: 'connect-failed', server: 'tcp://a:1', error });
  onStomp?.({ type: 'connected', server: 'tcp://a:1', brokerType: 'RabbitMQ', version: '1.2' });
  onStomp?.({ type: 'lost', error });
  onStomp?.({ type: 'reconnected', server: 'tcp://a:1' });
  const amqp = capture();
  const onAmqp = makeAmqpConnectionOptions(options('amqp://a:1'), 'outgoing', amqp.logger, metrics).onEvent;
  onAmqp?.({ type: 'connect-failed', server: 'amqp://a:1', error });
  onAmqp?.({ type: 'connected', server: 'amqp://a:1', brokerType: 'RabbitMQ', version: '3.10', mechanism: 'PLAIN' });
  onAmqp?.({ type: 'lost', error });
  onAmqp?.({ type: 'reconnected', server: 'amqp://a:1' });
  onAmqp?.({ type: 'link-error', address: '/queue/x', error });
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
