import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { AmqpAuthError, AmqpConnectError, AmqpConnection, type AmqpConnectionEvent } from '@msgbricks/amqp';
import * as brokers from '@msgbricks/test-support';
import { removeDir, tempDir } from '@msgbricks/test-support';
import type { EventContext } from 'rhea';
import { FakeBroker, sleep, until } from './fake-broker';

let fake: FakeBroker | undefined;
const conns: AmqpConnection[] = [];
let tmp: string | undefined;

afterEach(async () => {
  for (const c of conns.splice(0)) await c.close();
  await fake?.stop();
  fake = undefined;
  if (tmp !== undefined) removeDir(tmp);
  tmp = undefined;
});

function connection(options: ConstructorParameters<typeof AmqpConnection>[0]): AmqpConnection {
  const c = new AmqpConnection(options);
  conns.push(c);
  return c;
}

test('amqp connection - SASL ANONYMOUS without credentials (and with none), PLAIN with a non-ASCII password', async () => {
  const logins: [string, string][] = [];
  fake = await new FakeBroker({
    sasl: (m) => {
      m.enable_anonymous();
      m.enable_plain((user, pass) => {
        logins.push([user, pass]);
        return pass === 'pässwörd ☺';
      });
    },
  }).start();
  const events: AmqpConnectionEvent[] = [];
  const anon = connection({ uri: fake.uri, onEvent: (e) => events.push(e) });
  await anon.open();
  expect(anon.mechanism).toBe('ANONYMOUS');
  const none = connection({ uri: fake.uri, auth: ['none'] });
  await none.open();
  expect(none.mechanism).toBe('ANONYMOUS');
  expect(logins).toEqual([]);
  const plain = connection({ uri: fake.uri, auth: [{ scheme: 'plain', name: 'ünïcode', pass: 'pässwörd ☺' }] });
  await plain.open();
  expect(plain.mechanism).toBe('PLAIN');
  expect(logins).toEqual([['ünïcode', 'pässwörd ☺']]);
  expect(events).toEqual([{ type: 'connected', server: fake.uri, brokerType: 'UNKNOWN', version: '', mechanism: 'ANONYMOUS' }]);
});

test('amqp connection - a wrong password: clear connect-failed events naming the broker and the login, retries, no crash', async () => {
  let password = 'right';
  fake = await new FakeBroker({ sasl: (m) => m.enable_plain((user, pass) => user === 'guest' && pass === password) }).start();
  const events: AmqpConnectionEvent[] = [];
  const bad = connection({
    uri: `failover:(${fake.uri})?maxReconnectAttempts=2&initialReconnectDelay=5`,
    auth: ['plain name=guest pass=wrong'],
    onEvent: (e) => events.push(e),
  });
  const err = await bad.open().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AmqpConnectError);
  expect(String((err as Error).message)).toMatch(/cannot connect to amqp:\/\/127\.0\.0\.1:\d+ \(3 attempts\)/);
  expect(events.map((e) => e.type)).toEqual(['connect-failed', 'connect-failed', 'connect-failed']);
  for (const e of events) {
    const error = (e as { error: Error }).error;
    expect(error).toBeInstanceOf(AmqpAuthError);
    expect(error.message).toMatch(
      /^authentication refused by amqp:\/\/127\.0\.0\.1:\d+ \(SASL PLAIN as "guest"\): the broker refused the login \(SASL outcome auth\)$/,
    );
  }
  // A login that worked and then stops working (the password changed, the connection dropped): the reconnection
  // is retried with backoff until it works again.
  const later: AmqpConnectionEvent[] = [];
  const good = connection({
    uri: fake.uri,
    auth: ['plain name=guest pass=right'],
    reconnect: { initialDelay: 5, maxDelay: 20 },
    onEvent: (e) => later.push(e),
  });
  await good.open();
  password = 'changed';
  fake.drop();
  await until(() => later.filter((e) => e.type === 'connect-failed').length >= 3, 'three refused reconnections');
  expect(later.slice(0, 2).map((e) => e.type)).toEqual(['connected', 'lost']);
  password = 'right';
  await until(() => later.some((e) => e.type === 'reconnected'), 'the reconnection');
  expect(good.connected).toBe(true);
});

test('amqp connection - SASL EXTERNAL over TLS with the client certificate', async () => {
  tmp = tempDir('amqp-tls-');
  const m = brokers.makeTlsMaterial(tmp);
  const peers: string[] = [];
  fake = await new FakeBroker({
    listen: {
      transport: 'tls',
      key: readFileSync(m.keyFile),
      cert: readFileSync(m.certFile),
      ca: readFileSync(m.caFile),
      requestCert: true,
      rejectUnauthorized: true,
      // Offers EXTERNAL (and only that: no other mechanism is enabled) to clients with a verified certificate.
      enable_sasl_external: true,
    },
  }).start();
  fake.container.on('connection_open', (ctx: EventContext) => {
    const socket = (ctx.connection as unknown as { socket: TLSSocket }).socket;
    peers.push(String(socket.getPeerCertificate().subject.CN));
  });
  const uri = `amqps://127.0.0.1:${fake.port}`;
  const c = connection({ uri, auth: [`x509 cert=${m.clientCertFile} key=${m.clientKeyFile} ca_file=${m.caFile}`] });
  await c.open();
  expect(c.mechanism).toBe('EXTERNAL');
  expect(peers).toEqual(['msgbricks-client']);
  // Without a client certificate the handshake fails: an error, not a crash.
  const bare = connection({ uri, tls: { ca: m.caFile }, connectTimeout: 3000 });
  await expect(bare.open()).rejects.toThrow(AmqpConnectError);
  expect(() => new AmqpConnection({ uri: 'amqp://h', auth: [`x509 cert=${m.clientCertFile} key=${m.clientKeyFile}`] })).toThrow(
    /an x509 credential needs TLS/,
  );
});

test('amqp connection - the URI path is the open hostname vhost:NAME; none for / or no path', async () => {
  fake = await new FakeBroker().start();
  for (const path of ['/prod', '/a%2Fb', '/', '', '/%2F']) {
    const c = connection({ uri: `${fake.uri}${path}` });
    await c.open();
    await c.close();
  }
  expect(fake.opens.map((o) => o.hostname)).toEqual(['vhost:prod', 'vhost:a/b', undefined, undefined, undefined]);
});

test('amqp connection - heart-beats: a broker that goes silent is dropped after twice idleTimeout, then reconnected', async () => {
  fake = await new FakeBroker().start();
  let silenced = 0;
  fake.container.on('connection_open', (ctx: EventContext) => {
    if (silenced++ > 0) return;
    // After its open has gone out, this server-side connection never writes again (no heart-beats either).
    const raw = ctx.connection as unknown as { output(): void; heartbeat_out?: NodeJS.Timeout };
    setTimeout(() => {
      clearTimeout(raw.heartbeat_out);
      raw.output = () => undefined;
    }, 20);
  });
  const events: AmqpConnectionEvent[] = [];
  const c = connection({ uri: fake.uri, idleTimeout: 100, reconnect: { initialDelay: 5 }, onEvent: (e) => events.push(e) });
  const t0 = Date.now();
  await c.open();
  await until(() => events.some((e) => e.type === 'lost'), 'the loss', 5000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
  await until(() => events.some((e) => e.type === 'reconnected'), 'the reconnection', 5000);
  // The new connection gets heart-beats from the fake (rhea answers idle-time-out) and stays up.
  await sleep(500);
  expect(events.map((e) => e.type)).toEqual(['connected', 'lost', 'connected', 'reconnected']);
  expect(c.connected).toBe(true);
});

test('amqp connection - open and close in one read (a refused virtual host): a connect failure with the reason, retried', async () => {
  fake = await new FakeBroker().start();
  fake.container.on('connection_open', (ctx: EventContext) => {
    ctx.connection.close({ condition: 'amqp:unauthorized-access', description: 'virtual host refused' });
  });
  const events: AmqpConnectionEvent[] = [];
  const c = connection({
    uri: `failover:(${fake.uri})?maxReconnectAttempts=2&initialReconnectDelay=5`,
    onEvent: (e) => events.push(e),
  });
  await expect(c.open()).rejects.toThrow(/\(3 attempts\).*amqp:unauthorized-access: virtual host refused/);
  expect(events.map((e) => e.type)).toEqual(['connect-failed', 'connect-failed', 'connect-failed']);
  expect(c.connected).toBe(false);
});

test('amqp connection - a broker that closes each connection soon after its open is retried with growing delays', async () => {
  fake = await new FakeBroker().start();
  fake.container.on('connection_open', (ctx: EventContext) => {
    setTimeout(() => ctx.connection.close({ condition: 'amqp:connection:forced', description: 'go away' }), 20);
  });
  const events: AmqpConnectionEvent[] = [];
  const c = connection({ uri: fake.uri, reconnect: { initialDelay: 10, maxDelay: 10_000 }, onEvent: (e) => events.push(e) });
  const t0 = Date.now();
  await c.open();
  const count = () => events.filter((e) => e.type === 'connected').length;
  // At least three sessions (however slow the machine), and at most twelve in the first 1.5 s: load only slows.
  await until(() => count() >= 3, 'three sessions', 30_000);
  await sleep(Math.max(0, 1500 - (Date.now() - t0)));
  const connects = count();
  // 20 ms up, then 10, 20, 40... ms of backoff (with jitter): about seven in 1.5 s; restarting the backoff after
  // each of these short sessions would make about fifty.
  expect(connects).toBeGreaterThanOrEqual(3);
  expect(connects).toBeLessThanOrEqual(12);
  const lost = events.find((e) => e.type === 'lost') as { error: Error };
  expect(lost.error.message).toMatch(/amqp:\/\/127\.0\.0\.1:\d+: amqp:connection:forced: go away/);
});

test('amqp connection - nobody listening: a plain URI fails at once, a failover URI after maxReconnectAttempts', async () => {
  const c1 = connection({ uri: 'amqp://127.0.0.1:1' });
  await expect(c1.open()).rejects.toThrow(/cannot connect to amqp:\/\/127\.0\.0\.1:1 \(1 attempt\).*ECONNREFUSED/);
  const c2 = connection({
    uri: 'failover:(amqp://127.0.0.1:1,tcp://127.0.0.1:2)?maxReconnectAttempts=3&initialReconnectDelay=1',
  });
  await expect(c2.open()).rejects.toThrow(/\(4 attempts\)/);
  await expect(c2.whenConnected()).rejects.toThrow(AmqpConnectError);
});
