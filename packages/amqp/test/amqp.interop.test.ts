import { RejectedError } from '@msgbricks/agent';
import {
  AmqpAuthError,
  AmqpConnectError,
  AmqpConnection,
  type AmqpConnectionEvent,
  type AmqpConnectionOptions,
  AmqpIncoming,
  AmqpOutgoing,
} from '@msgbricks/amqp';
import { Message } from '@msgbricks/message';
import { StompIncoming, StompOutgoing } from '@msgbricks/stomp';
import type { TlsBroker as Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';

jest.setTimeout(240_000);

let rabbit: Broker;
let unique = 0;

beforeAll(async () => {
  rabbit = await brokers.startRabbitMQ({ tls: true });
});

afterAll(async () => {
  await rabbit?.stop();
});

function conn(extra: Partial<AmqpConnectionOptions> = {}): AmqpConnectionOptions {
  return {
    uri: `amqp://${rabbit.host}:${rabbit.ports.amqp}`,
    auth: [`plain name=${rabbit.user} pass=${rabbit.password}`],
    ...extra,
  };
}

function stompConn() {
  return { uri: `tcp://${rabbit.host}:${rabbit.ports.stomp}`, auth: [`plain name=${rabbit.user} pass=${rabbit.password}`] };
}

const name = (what: string) => `msgbricks.amqp.${what}.${process.pid}.${unique++}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads `n` deliveries (acking each) or fails after `ms`. */
async function receive(incoming: AmqpIncoming | StompIncoming, n: number, ms = 60_000): Promise<Message[]> {
  const out: Message[] = [];
  const until = Date.now() + ms;
  while (out.length < n) {
    if (Date.now() > until) throw new Error(`received ${out.length} of ${n}`);
    const d = await incoming.next();
    if (d === undefined || d === null) {
      await sleep(5);
      continue;
    }
    out.push(d.message);
    await incoming.ack(d.id);
  }
  return out;
}

const binary = (i: number) => Buffer.from([0, 255, i & 0xff, 0, 10, 13, 0xfe, 0]);
function sample(i: number): Message {
  const header: Record<string, string> = {
    seq: String(i),
    kind: i % 2 ? 'bin' : 'text',
    escaped: 'a:b\\c\nd',
    ünïcode: 'välue ☺',
    'message-id': `id-${i}`,
    persistent: 'true',
  };
  if (i % 3 === 0) header['correlation-id'] = `corr-${i}`;
  if (i % 5 === 0) header.priority = String(i % 10);
  return new Message({ header, body: i % 2 ? binary(i) : `text ${i} Déjà vu ☺ ${'x'.repeat(i % 50)}\0end` });
}

test('amqp RabbitMQ - 1000 messages out and back in with identical headers and text/binary bodies', async () => {
  const dest = `/queue/${name('roundtrip')}`;
  const events: AmqpConnectionEvent[] = [];
  const out = new AmqpOutgoing(conn({ onEvent: (e) => events.push(e) }), { destination: dest });
  await out.open();
  expect(out.connection.brokerType).toBe('RabbitMQ');
  expect(out.connection.version).toMatch(/^3\.10\./);
  expect(out.connection.mechanism).toBe('PLAIN');
  const N = 1000;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: N }, (_, i) => out.send(sample(i))));
  const sendMs = Date.now() - t0;
  await out.close();
  const inc = new AmqpIncoming(conn(), { subscribe: [{ destination: dest }], prefetch: 100 });
  await inc.open();
  const t1 = Date.now();
  const got = await receive(inc, N);
  const recvMs = Date.now() - t1;
  await inc.close();
  console.log(`RabbitMQ AMQP 1.0: ${N} confirmed sends in ${sendMs} ms, ${N} deliveries+accepts in ${recvMs} ms`);
  got.sort((x, y) => Number(x.getHeader('seq')) - Number(y.getHeader('seq')));
  expect(got.map((m) => m.getHeader('seq'))).toEqual(Array.from({ length: N }, (_, i) => String(i)));
  got.forEach((m, i) => {
    const want = sample(i);
    const header: Record<string, string> = { ...want.header, destination: dest };
    if (want.text) header['content-type'] = 'text/plain; charset=UTF-8';
    expect(m.header).toEqual(header);
    expect(m.text).toBe(want.text);
    expect(m.body).toEqual(want.body);
  });
  expect(events.map((e) => e.type)).toEqual(['connected']);
});

test('amqp RabbitMQ - a small prefetch holds against RabbitMQ 3.10 with a slow consumer (credit given back only when used up)', async () => {
  const dest = `/queue/${name('prefetch')}`;
  const out = new AmqpOutgoing(conn(), { destination: dest });
  await out.open();
  const N = 300;
  await Promise.all(Array.from({ length: N }, (_, i) => out.send(new Message({ header: { seq: String(i) }, body: `m${i}` }))));
  await out.close();
  const errors = jest.spyOn(console, 'error');
  try {
    for (const prefetch of [1, 3, 10]) {
      const inc = new AmqpIncoming(conn(), { subscribe: [{ destination: dest }], prefetch });
      await inc.open();
      let max = 0;
      let got = 0;
      const until = Date.now() + 60_000;
      while (got < N / 3 && Date.now() < until) {
        const d = await inc.next();
        max = Math.max(max, inc.unsettled);
        if (d === undefined || d === null) {
          await sleep(1);
          continue;
        }
        got++;
        await sleep(1);
        // Until the window has been seen full once, hold the message (up to 2 s) so that the broker can fill the
        // credit however the machine schedules it: with only the 1 ms pace the check below was flaky under load.
        const hold = Date.now() + 2000;
        while (max < prefetch && Date.now() < hold) {
          await sleep(1);
          max = Math.max(max, inc.unsettled);
        }
        await inc.ack(d.id);
      }
      await inc.close();
      expect([prefetch, got]).toEqual([prefetch, N / 3]);
      expect([prefetch, max]).toEqual([prefetch, prefetch]);
    }
    // rhea says "Received transfer when credit was 0" when a broker overruns the credit.
    expect(errors).not.toHaveBeenCalled();
  } finally {
    errors.mockRestore();
  }
});

test('amqp RabbitMQ - /amq/queue/Q and queue=Q on a queue another attach created durable; /queue/Q on one STOMP created', async () => {
  // A receiver on /queue/Q declares Q durable (terminus durable 2); leave it.
  const q = name('existing');
  const declare = new AmqpIncoming(conn(), { subscribe: [{ destination: `/queue/${q}` }] });
  await declare.open();
  await declare.close();
  const out = new AmqpOutgoing(conn(), { destination: `/amq/queue/${q}` });
  await out.open();
  for (let i = 0; i < 10; i++) await out.send(new Message({ header: { n: String(i) }, body: `via amq ${i}` }));
  await out.close();
  const inc = new AmqpIncoming(conn(), { subscribe: [{ queue: q }], prefetch: 3 });
  await inc.open();
  const got = await receive(inc, 10);
  await inc.close();
  expect(got.map((m) => m.getHeader('n'))).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  expect(got.every((m) => m.getHeader('destination') === `/amq/queue/${q}`)).toBe(true);
  // A queue declared durable by STOMP (SUBSCRIBE /queue/S): an attach with terminus durable 0 would fail with
  // PRECONDITION_FAILED - inequivalent arg 'durable'; ours (durable 2) is fine, both ways.
  const s = name('stomp-made');
  const c = await brokers.stompConnect({ port: rabbit.ports.stomp, login: rabbit.user, passcode: rabbit.password });
  c.send('SUBSCRIBE', { id: 'd', destination: `/queue/${s}`, receipt: 'r' });
  expect((await c.next()).command).toBe('RECEIPT');
  await c.close();
  const out2 = new AmqpOutgoing(conn(), { destination: `/queue/${s}` });
  await out2.open();
  await out2.send(new Message({ body: 'into a STOMP queue' }));
  await out2.close();
  const inc2 = new AmqpIncoming(conn(), { subscribe: [{ destination: `/queue/${s}` }] });
  await inc2.open();
  expect((await receive(inc2, 1))[0]?.body).toBe('into a STOMP queue');
  await inc2.close();
  // A missing queue: the subscription is refused with RabbitMQ's reason.
  const missing = new AmqpIncoming(conn(), { subscribe: [{ queue: name('missing') }] });
  await expect(missing.open()).rejects.toThrow(/amqp:not-found: NOT_FOUND - no queue/);
});

test('amqp RabbitMQ - topics and exchanges: subscribe forms that translate to RabbitMQ 1.0 addresses', async () => {
  const rk = name('topic');
  const inc = new AmqpIncoming(conn(), {
    subscribe: [{ destination: `/topic/${rk}` }, { exchange: 'amq.direct', routing_key: rk }],
  });
  await inc.open();
  const out = new AmqpOutgoing(conn());
  await out.open();
  await out.send(new Message({ header: { destination: `/topic/${rk}` }, body: 'on the topic' }));
  await out.send(new Message({ header: { destination: `/exchange/amq.direct/${rk}` }, body: 'on the exchange' }));
  await out.close();
  const got = await receive(inc, 2);
  await inc.close();
  expect(got.map((m) => [m.getHeader('destination'), m.body]).sort()).toEqual([
    [`/exchange/amq.direct/${rk}`, 'on the exchange'],
    [`/topic/${rk}`, 'on the topic'],
  ]);
});

test('amqp RabbitMQ - bodies cross between AMQP 1.0 and STOMP byte for byte', async () => {
  const dest = `/queue/${name('cross')}`;
  const messages = [
    new Message({ header: { n: '0' }, body: 'text Déjà vu ☺\0with NUL' }),
    new Message({ header: { n: '1' }, body: Buffer.from([0, 1, 2, 255, 0xc3, 0x28, 0]) }),
    new Message({ header: { n: '2' }, body: '' }),
  ];
  // AMQP 1.0 in, STOMP out.
  const declare = new StompIncoming(stompConn(), { subscribe: [{ destination: dest }] });
  await declare.open();
  await declare.close();
  const aout = new AmqpOutgoing(conn(), { destination: dest });
  await aout.open();
  for (const m of messages) await aout.send(m);
  await aout.close();
  const sin = new StompIncoming(stompConn(), { subscribe: [{ destination: dest }] });
  await sin.open();
  const viaStomp = await receive(sin, messages.length);
  await sin.close();
  // RabbitMQ does not turn AMQP 1.0 application properties into STOMP headers: compare bodies (and text-ness).
  expect(viaStomp.map((m) => [m.text, m.body])).toEqual(messages.map((m) => [m.text, m.body]));
  // STOMP in, AMQP 1.0 out.
  const sout = new StompOutgoing(stompConn(), { destination: dest, persistent: true });
  await sout.open();
  for (const m of messages) await sout.send(m);
  await sout.close();
  const ain = new AmqpIncoming(conn(), { subscribe: [{ destination: dest }] });
  await ain.open();
  const viaAmqp = await receive(ain, messages.length);
  await ain.close();
  expect(viaAmqp.map((m) => [m.text, m.body])).toEqual(messages.map((m) => [m.text, m.body]));
  expect(viaAmqp.every((m) => m.getHeader('persistent') === 'true')).toBe(true);
});

test('amqp RabbitMQ - a broker restart in the middle: sends are resent, receivers re-attached, nothing lost', async () => {
  const dest = `/queue/${name('restart')}`;
  const outEvents: string[] = [];
  const incEvents: string[] = [];
  const out = new AmqpOutgoing(conn({ reconnect: { maxDelay: 500 }, onEvent: (e) => outEvents.push(e.type) }), {
    destination: dest,
  });
  const inc = new AmqpIncoming(conn({ reconnect: { maxDelay: 500 }, onEvent: (e) => incEvents.push(e.type) }), {
    subscribe: [{ destination: dest }],
    prefetch: 20,
  });
  await out.open();
  await inc.open();
  const N = 2000;
  let confirmed = 0;
  const seen = new Set<string>();
  let receiving = true;
  const reader = (async () => {
    while (receiving) {
      const d = await inc.next();
      if (d === undefined || d === null) {
        await sleep(5);
        continue;
      }
      seen.add(d.message.getHeader('seq') ?? '');
      await inc.ack(d.id);
    }
  })();
  const sends: Promise<void>[] = [];
  let restarted: Promise<void> | undefined;
  for (let i = 0; i < N; i++) {
    sends.push(out.send(sample(i)).then(() => void confirmed++));
    if (i === N / 4) {
      while (confirmed < N / 8) await sleep(5);
      restarted = rabbit.restart();
    }
    if (i % 100 === 0) await sleep(1);
  }
  await restarted;
  await Promise.all(sends);
  const until = Date.now() + 120_000;
  while (seen.size < N && Date.now() < until) await sleep(50);
  receiving = false;
  await reader;
  await inc.close();
  await out.close();
  expect(outEvents).toContain('lost');
  expect(outEvents).toContain('reconnected');
  expect(incEvents).toContain('lost');
  expect(incEvents).toContain('reconnected');
  expect(confirmed).toBe(N);
  expect(seen.size).toBe(N);
});

test('amqp RabbitMQ - TLS with SASL EXTERNAL on the AMQPS port: the certificate CN is the user', async () => {
  const uri = `amqps://${rabbit.host}:${rabbit.ports.amqpSsl}`;
  const auth = [`x509 cert=${rabbit.tls.clientCertFile} key=${rabbit.tls.clientKeyFile} ca_file=${rabbit.tls.caFile}`];
  const dest = `/queue/${name('tls')}`;
  const out = new AmqpOutgoing({ uri, auth }, { destination: dest });
  await out.open();
  expect(out.connection.mechanism).toBe('EXTERNAL');
  // RabbitMQ checks user_id against the login: the message is accepted only if the login is the certificate's CN.
  await out.send(new Message({ header: { via: 'tls', 'user-id': 'msgbricks-client' }, body: Buffer.from([0, 1, 255]) }));
  // ... and ends the session for any other user_id: that message is refused (found alone), the others go.
  const others = [1, 2, 3].map((i) => out.send(new Message({ header: { n: String(i) }, body: `m${i}` })));
  const impostor = out.send(new Message({ header: { 'user-id': 'guest' }, body: 'not me' }));
  await expect(impostor).rejects.toThrow(RejectedError);
  await expect(impostor).rejects.toThrow(/user_id property set to 'guest' but authenticated user was 'msgbricks-client'/);
  await Promise.all(others);
  await out.close();
  const inc = new AmqpIncoming({ uri, auth }, { subscribe: [{ destination: dest }] });
  await inc.open();
  const got = await receive(inc, 4);
  await inc.close();
  expect(got[0]?.header).toMatchObject({ via: 'tls', 'user-id': 'msgbricks-client' });
  expect(got[0]?.body).toEqual(Buffer.from([0, 1, 255]));
  expect(new Set(got.slice(1).map((m) => m.getHeader('n')))).toEqual(new Set(['1', '2', '3']));
  // Without a client certificate the TLS handshake is refused: an error, not a crash.
  const bare = new AmqpConnection({
    uri,
    tls: { ca: rabbit.tls.caFile },
    auth: [`plain name=${rabbit.user} pass=${rabbit.password}`],
  });
  await expect(bare.open()).rejects.toThrow(AmqpConnectError);
  await bare.close();
});

test('amqp RabbitMQ - a wrong password gives a clear error, is retried per the policy, and never crashes', async () => {
  const events: AmqpConnectionEvent[] = [];
  const c = new AmqpConnection({
    uri: `failover:(amqp://${rabbit.host}:${rabbit.ports.amqp})?maxReconnectAttempts=2&initialReconnectDelay=10`,
    auth: ['plain name=guest pass=wrong'],
    onEvent: (e) => events.push(e),
  });
  const err = await c.open().then(
    () => undefined,
    (e: unknown) => e,
  );
  await c.close();
  expect(err).toBeInstanceOf(AmqpConnectError);
  expect(String((err as Error).message)).toMatch(/cannot connect to amqp:\/\/127\.0\.0\.1:\d+ \(3 attempts\)/);
  expect(events).toHaveLength(3);
  for (const e of events) {
    expect(e.type).toBe('connect-failed');
    const error = (e as { error: Error }).error;
    expect(error).toBeInstanceOf(AmqpAuthError);
    expect(error.message).toMatch(/^authentication refused by amqp:\/\/127\.0\.0\.1:\d+ \(SASL PLAIN as "guest"\): /);
  }
  const ok = new AmqpConnection(conn());
  await ok.open();
  await ok.close();
});
