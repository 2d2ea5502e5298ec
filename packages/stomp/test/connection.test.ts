import { RejectedError } from '@msgbricks/agent';
import { Message } from '@msgbricks/message';
import {
  StompBrokerError,
  StompConnection,
  type StompConnectionEvent,
  type StompConnectionOptions,
  StompFlushError,
  StompIncoming,
  StompOutgoing,
} from '@msgbricks/stomp';
import { FakeBroker } from './fake-broker';

jest.setTimeout(20_000);

let broker: FakeBroker | undefined;
afterEach(async () => {
  jest.restoreAllMocks();
  await broker?.stop();
  broker = undefined;
});

async function fake(options: ConstructorParameters<typeof FakeBroker>[0] = {}): Promise<FakeBroker> {
  broker = await new FakeBroker(options).start();
  return broker;
}

function options(b: FakeBroker, extra: Partial<StompConnectionOptions> = {}): StompConnectionOptions {
  return { uri: b.uri, reconnect: { initialDelay: 10, maxDelay: 50 }, ...extra };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stomp connection - receipts', () => {
  test('stomp connection - a receipt late by receiptTimeout drops the session; the SEND goes again and resolves', async () => {
    // The first SEND of the first session gets no RECEIPT.
    const b = await fake({ holdReceipt: (f) => f.command === 'SEND' && f.session === 1 });
    const events: string[] = [];
    const out = new StompOutgoing(options(b, { receiptTimeout: 300, onEvent: (e) => events.push(e.type) }));
    await out.open();
    const t0 = Date.now();
    await out.send(new Message({ header: { destination: '/queue/a', n: '1' }, body: 'late' }));
    const ms = Date.now() - t0;
    await out.close();
    expect(events).toEqual(['connected', 'lost', 'connected', 'reconnected']);
    // Found by the sweep (every 75 ms here) soon after the 300 ms.
    expect(ms).toBeGreaterThanOrEqual(300);
    // Far below the 20 s a missing sweep would take (the test's time-out); loose, for a loaded CI machine.
    expect(ms).toBeLessThan(5000);
    const sends = b.frames.filter((f) => f.command === 'SEND');
    expect(sends.map((f) => [f.session, f.headers.n, f.body.toString()])).toEqual([
      [1, '1', 'late'],
      [2, '1', 'late'],
    ]);
  });

  test('stomp outgoing - a message that drops the connection without an ERROR is refused after 3 drops alone; the others go', async () => {
    const b = await fake({ dropOn: (f) => f.command === 'SEND' && f.headers.poison === 'yes' });
    const out = new StompOutgoing(options(b));
    await out.open();
    const msg = (n: number) =>
      new Message({ header: { destination: '/queue/a', n: `${n}`, ...(n === 3 ? { poison: 'yes' } : {}) }, body: `m${n}` });
    const outcomes = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => out.send(msg(n))));
    expect(outcomes.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const reason = (outcomes[2] as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(RejectedError);
    expect(reason.message).toMatch(/^the connection dropped 3 times while this message to \/queue\/a was the only one in flight/);
    // Sent with the others once, then alone three times; after that, sends are concurrent again.
    const poisoned = b.frames.filter((f) => f.command === 'SEND' && f.headers.n === '3');
    expect(poisoned.map((f) => f.session)).toEqual([1, 2, 3, 4]);
    for (const session of [2, 3, 4]) {
      // Alone: the poisoned SEND is the last frame of its session, every SEND before it has its receipt.
      const frames = b.frames.filter((f) => f.session === session);
      expect(frames[frames.length - 1]?.headers.n).toBe('3');
    }
    const later = await Promise.allSettled([6, 7].map((n) => out.send(msg(n))));
    expect(later.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    await out.close();
    const received = b.frames.filter((f) => f.command === 'SEND' && f.headers.n !== '3').map((f) => f.headers.n);
    expect(new Set(received)).toEqual(new Set(['1', '2', '4', '5', '6', '7']));
  });

  test('stomp outgoing - drops while a message is alone, each followed by a failed reconnection (a restarting broker), never refuse it', async () => {
    // Sessions 1 to 4 die on their first SEND, and the broker is away for one connection attempt after each.
    const b = await fake({ dropOn: (f) => f.command === 'SEND' && f.session <= 4, downAfterDrop: 1 });
    const events: string[] = [];
    const out = new StompOutgoing(options(b, { onEvent: (e) => events.push(e.type) }));
    await out.open();
    const outcomes = await Promise.allSettled(
      [1, 2].map((n) => out.send(new Message({ header: { destination: '/queue/a', n: `${n}` }, body: `m${n}` }))),
    );
    await out.close();
    expect(outcomes.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(events.filter((e) => e === 'connect-failed')).toHaveLength(4);
    // Message 1 went alone on sessions 2, 3 and 4, and each drop took it down: without the failed attempts in
    // between, that is the poison pattern (see the test above).
    const sends = b.frames.filter((f) => f.command === 'SEND');
    expect(sends.filter((f) => f.headers.n === '1').map((f) => f.session)).toEqual([1, 2, 3, 4, 5]);
    expect(sends.filter((f) => f.session === 5).map((f) => f.headers.n)).toEqual(['1', '2']);
  });

  test('stomp outgoing - close() gives up on SENDs never receipted after closeTimeout: they fail, nothing hangs', async () => {
    const b = await fake({ holdReceipt: (f) => f.command === 'SEND' });
    const out = new StompOutgoing(options(b), { closeTimeout: 300 });
    await out.open();
    const sends = [1, 2, 3].map((n) => out.send(new Message({ header: { destination: '/queue/a', n: `${n}` }, body: 'x' })));
    const outcomes = Promise.allSettled(sends);
    await sleep(100);
    const t0 = Date.now();
    await out.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const settled = await outcomes;
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    // The first SEND to /queue/a is its probe: the other two waited for its receipt, never sent, and fail as well.
    expect(b.frames.filter((f) => f.command === 'SEND')).toHaveLength(1);
  });

  test('stomp connection - one receipt timer per connection, not one per SEND; latencies are reported', async () => {
    const b = await fake();
    const latencies: [string, number][] = [];
    const c = new StompConnection(options(b, { receiptTimeout: 5000, onReceipt: (cmd, s) => latencies.push([cmd, s]) }));
    await c.open();
    const timeouts = jest.spyOn(global, 'setTimeout');
    const intervals = jest.spyOn(global, 'setInterval');
    await Promise.all(Array.from({ length: 1000 }, (_, i) => c.send({ destination: '/queue/a' }, Buffer.from(`m${i}`))));
    expect(timeouts.mock.calls.length + intervals.mock.calls.length).toBeLessThan(5);
    await c.close();
    expect(latencies).toHaveLength(1000);
    expect(latencies.every(([cmd, s]) => cmd === 'SEND' && s >= 0 && s < 5)).toBe(true);
  });
});

describe('stomp outgoing - probing destinations', () => {
  const msg = (destination: string, n: number) => new Message({ header: { destination, n: `${n}` }, body: `m${n}` });

  test('stomp outgoing - a destination that drops the session is probed alone: the other messages are never sent twice', async () => {
    const b = await fake({ dropOn: (f) => f.command === 'SEND' && f.headers.destination === '/queue/bad' });
    const out = new StompOutgoing(options(b));
    await out.open();
    const all = Array.from({ length: 40 }, (_, i) => (i === 20 ? msg('/queue/bad', i) : msg('/queue/good', i)));
    const outcomes = await Promise.allSettled(all.map((m) => out.send(m)));
    await out.close();
    expect(outcomes.filter((r) => r.status === 'rejected')).toHaveLength(1);
    const refused = outcomes[20] as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(RejectedError);
    expect(refused.reason.message).toMatch(/^the connection dropped 3 times while this message to \/queue\/bad was the only one/);
    const sends = b.frames.filter((f) => f.command === 'SEND');
    const good = sends.filter((f) => f.headers.destination === '/queue/good').map((f) => f.headers.n);
    // Every good message once: none was on the wire with the probe when the session went.
    expect(good).toHaveLength(39);
    expect(new Set(good).size).toBe(39);
    // The bad one alone each time: the last frame of each session it ended.
    const bad = sends.filter((f) => f.headers.destination === '/queue/bad');
    expect(bad.map((f) => f.session)).toEqual([1, 2, 3]);
    for (const f of bad) {
      const frames = b.frames.filter((g) => g.session === f.session);
      expect(frames[frames.length - 1]).toBe(f);
    }
  });

  test('stomp outgoing - the first SEND to a new destination waits until nothing else is on the wire; known ones go together', async () => {
    // Message 2's first receipt never comes: the session is dropped after 300 ms and message 2 goes again.
    const b = await fake({ holdReceipt: (f) => f.command === 'SEND' && f.headers.n === '2' && f.session === 1 });
    const out = new StompOutgoing(options(b, { receiptTimeout: 300 }));
    await out.open();
    await out.send(msg('/queue/a', 1));
    const second = out.send(msg('/queue/a', 2));
    await sleep(50);
    const probe = out.send(msg('/queue/b', 3));
    await Promise.all([second, probe]);
    // Known destinations then go together, without waiting for each other.
    const held = [4, 5, 6].map((n) => out.send(msg(n % 2 === 0 ? '/queue/a' : '/queue/b', n)));
    await Promise.all(held);
    await out.close();
    const sends = b.frames.filter((f) => f.command === 'SEND').map((f) => [f.session, f.headers.n]);
    // Message 3 (the first to /queue/b) never went while message 2 was unreceipted: not in session 1.
    expect(sends).toEqual([
      [1, '1'],
      [1, '2'],
      [2, '2'],
      [2, '3'],
      [2, '4'],
      [2, '5'],
      [2, '6'],
    ]);
  });

  test('stomp outgoing - with probeDestinations false, the first SEND to a destination goes with the others', async () => {
    const b = await fake({ holdReceipt: (f) => f.command === 'SEND' && f.headers.n === '2' && f.session === 1 });
    const out = new StompOutgoing(options(b, { receiptTimeout: 300 }), { probeDestinations: false });
    await out.open();
    await out.send(msg('/queue/a', 1));
    const second = out.send(msg('/queue/a', 2));
    await sleep(50);
    await Promise.all([second, out.send(msg('/queue/b', 3))]);
    await out.close();
    const sends = b.frames.filter((f) => f.command === 'SEND').map((f) => [f.session, f.headers.n]);
    expect(sends.slice(0, 3)).toEqual([
      [1, '1'],
      [1, '2'],
      [1, '3'],
    ]);
  });
});

test('stomp connection - a broker that closes each session soon after CONNECTED is retried with growing delays', async () => {
  const b = await fake({ closeAfterConnectedMs: 20 });
  const events: StompConnectionEvent[] = [];
  const c = new StompConnection({
    uri: b.uri,
    reconnect: { initialDelay: 10, maxDelay: 10_000 },
    onEvent: (e) => events.push(e),
  });
  const t0 = Date.now();
  await c.open();
  const count = () => events.filter((e) => e.type === 'connected').length;
  // At least three sessions (however slow the machine), and at most twelve in the first 1.5 s: load only slows.
  for (const until = Date.now() + 30_000; count() < 3 && Date.now() < until; ) await sleep(20);
  await sleep(Math.max(0, 1500 - (Date.now() - t0)));
  const connects = count();
  await c.close();
  // 20 ms up, then 10, 20, 40... ms of backoff (with jitter): about seven in 1.5 s; restarting the backoff after
  // each of these short sessions (as this module did before the agent's connection core) would make about fifty.
  expect(connects).toBeGreaterThanOrEqual(3);
  expect(connects).toBeLessThanOrEqual(12);
});

test('stomp connection - an ERROR body is quoted on one line, cut at 300 characters (the whole body is kept)', () => {
  const body = `java.lang.Exception: no\n${'\tat org.apache.activemq.Frame.x(Frame.java:1)\n'.repeat(50)}`;
  const err = new StompBrokerError('refused', { message: 'refused', 'receipt-id': '7' }, body);
  expect(err.message).toMatch(/^refused: java\.lang\.Exception: no at org\.apache/);
  expect(err.message).toHaveLength('refused: '.length + 300 + 3);
  expect(err.message.endsWith('...')).toBe(true);
  expect(err.body).toBe(body);
  expect(err.receiptId).toBe('7');
  expect(new StompBrokerError('short', {}, ' not a valid destination\n').message).toBe('short: not a valid destination');
});

describe('stomp connection - unsubscribe', () => {
  test('stomp incoming - unsubscribe at close: the n-th header set with the n-th subscription, its id, a receipt', async () => {
    const b = await fake();
    const inc = new StompIncoming(options(b), {
      subscribe: [
        { destination: '/topic/a', id: 'sub-a', 'activemq.subscriptionName': 'durable-a' },
        { destination: '/queue/b' },
      ],
      unsubscribe: [{ 'activemq.subscriptionName': 'durable-a', id: 'ignored' }],
    });
    await inc.open();
    await inc.close();
    expect(b.commands()).toEqual(['CONNECT', 'SUBSCRIBE', 'SUBSCRIBE', 'UNSUBSCRIBE', 'UNSUBSCRIBE', 'DISCONNECT']);
    const [u1, u2] = b.frames.filter((f) => f.command === 'UNSUBSCRIBE');
    const subB = b.frames.filter((f) => f.command === 'SUBSCRIBE')[1];
    expect(u1?.headers).toEqual({ 'activemq.subscriptionName': 'durable-a', id: 'sub-a', receipt: expect.any(String) });
    expect(u2?.headers).toEqual({ id: subB?.headers.id, receipt: expect.any(String) });
  });

  test('stomp incoming - ActiveMQ durable subscription: a plain UNSUBSCRIBE first (the consumer), then the named one', async () => {
    const b = await fake();
    const inc = new StompIncoming(options(b, { type: 'ActiveMQ' }), {
      subscribe: [{ destination: '/topic/a', 'activemq.subscriptionName': 'durable-a' }, { destination: '/queue/b' }],
      unsubscribe: [{ 'activemq.subscriptionName': 'durable-a' }],
    });
    await inc.open();
    await inc.close();
    const [s1, s2] = b.frames.filter((f) => f.command === 'SUBSCRIBE');
    expect(b.frames.filter((f) => f.command === 'UNSUBSCRIBE').map((f) => ({ ...f.headers, receipt: 'R' }))).toEqual([
      { id: s1?.headers.id, receipt: 'R' },
      { id: s2?.headers.id, receipt: 'R' },
      { 'activemq.subscriptionName': 'durable-a', id: s1?.headers.id, receipt: 'R' },
    ]);
    expect(b.commands().slice(-1)).toEqual(['DISCONNECT']);
  });

  test('stomp incoming - without the unsubscribe option no UNSUBSCRIBE is sent (stompclt default)', async () => {
    const b = await fake();
    const inc = new StompIncoming(options(b), { subscribe: [{ destination: '/queue/b' }] });
    await inc.open();
    await inc.close();
    expect(b.commands()).toEqual(['CONNECT', 'SUBSCRIBE', 'DISCONNECT']);
  });

  test('stomp incoming - an UNSUBSCRIBE without receipt fails close(), which still disconnects', async () => {
    const b = await fake({ holdReceipt: (f) => f.command === 'UNSUBSCRIBE' });
    const inc = new StompIncoming(options(b, { receiptTimeout: 200, reconnect: false }), {
      subscribe: [{ destination: '/queue/b' }],
      unsubscribe: [],
    });
    await inc.open();
    await expect(inc.close()).rejects.toThrow(/RECEIPT for UNSUBSCRIBE from \/queue\/b/);
    expect(inc.connection.connected).toBe(false);
  });
});

describe('stomp connection - flush', () => {
  test('stomp connection - close() gives up after flushTimeout when the broker does not read, without DISCONNECT', async () => {
    const b = await fake({ stopReading: true });
    const c = new StompConnection(options(b, { flushTimeout: 300, reconnect: false }));
    await c.open();
    // Far more than the socket buffers hold: most of it stays in the process.
    const big = Buffer.alloc(1024 * 1024, 120);
    const sends = Array.from({ length: 32 }, () => c.send({ destination: '/queue/a' }, big).catch((e: Error) => e));
    await sleep(50);
    const t0 = Date.now();
    const err = await c.close().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(StompFlushError);
    expect((err as StompFlushError).message).toMatch(
      /failed to flush the outgoing buffer within 300 ms \(\d+ bytes( and \d+ frames)? unsent\)/,
    );
    expect((await Promise.all(sends)).every((e) => e instanceof Error)).toBe(true);
    expect(b.commands()).not.toContain('DISCONNECT');
  });

  test('stomp connection - close() waits for the buffered frames to leave, then DISCONNECTs', async () => {
    const b = await fake();
    const c = new StompConnection(options(b, { flushTimeout: 5000 }));
    await c.open();
    const big = Buffer.alloc(256 * 1024, 120);
    const sends = Array.from({ length: 16 }, () => c.send({ destination: '/queue/a' }, big));
    // At once: the 4 MiB are still on their way.
    await c.close();
    await Promise.all(sends);
    expect(b.commands().slice(1)).toEqual([...Array(16).fill('SEND'), 'DISCONNECT']);
  });
});

describe('stomp connection - debug events', () => {
  async function run(debug: string): Promise<StompConnectionEvent[]> {
    const b = await fake();
    const events: StompConnectionEvent[] = [];
    const c = new StompConnection(
      options(b, { debug, auth: ['plain name=someone pass=s3cr3t'], onEvent: (e) => events.push(e) }),
    );
    await c.open();
    await c.send({ destination: '/queue/a', color: 'blue' }, Buffer.from('x'.repeat(300)));
    await c.close();
    await b.stop();
    broker = undefined;
    return events;
  }
  const frames = (events: StompConnectionEvent[]) =>
    events.filter((e): e is Extract<StompConnectionEvent, { type: 'frame' }> => e.type === 'frame');

  test('stomp connection - "command": each frame sent and received, with its body length, no headers, no body', async () => {
    const events = await run('command');
    expect(frames(events).map((e) => `${e.direction} ${e.command} ${e.bodyLength}`)).toEqual([
      'out CONNECT 0',
      'in CONNECTED 0',
      'out SEND 300',
      'in RECEIPT 0',
      'out DISCONNECT 0',
      'in RECEIPT 0',
    ]);
    expect(frames(events).some((e) => e.headers !== undefined || e.body !== undefined)).toBe(false);
    expect(events.some((e) => e.type === 'io' || e.type === 'debug')).toBe(false);
  });

  test('stomp connection - "header body": headers with login and passcode masked, the body cut at 200 bytes', async () => {
    const events = await run('header,body');
    const f = frames(events);
    expect(f[0]?.headers).toMatchObject({ login: '***', passcode: '***', 'heart-beat': '0,0' });
    expect(f[1]?.headers).toMatchObject({ server: 'FakeMQ/1.0' });
    const send = f.find((e) => e.command === 'SEND');
    expect(send?.headers).toMatchObject({ destination: '/queue/a', color: 'blue', 'content-length': '300' });
    expect([send?.body, send?.truncated]).toEqual(['x'.repeat(200), true]);
    expect(JSON.stringify(events)).not.toMatch(/someone|s3cr3t/);
  });

  test('stomp connection - "all": frames, I/O, connection steps and API calls', async () => {
    const events = await run('all');
    const types = new Set(events.map((e) => (e.type === 'debug' ? `debug:${e.what}` : e.type)));
    expect([...types].sort()).toEqual(['connected', 'debug:api', 'debug:connection', 'frame', 'io']);
    expect(events.filter((e) => e.type === 'io' && e.direction === 'out').length).toBeGreaterThan(0);
    expect(JSON.stringify(events)).not.toMatch(/someone|s3cr3t/);
  });
});
