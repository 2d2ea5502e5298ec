import type { Delivery } from '@msgbricks/agent';
import { AmqpBrokerError, type AmqpConnectionEvent, AmqpIncoming, AmqpSubscribeError, parseSubscription } from '@msgbricks/amqp';
import type { EventContext, Delivery as RheaDelivery, Sender } from 'rhea';
import { message as rheaMessage } from 'rhea';
import { FakeBroker, remoteTerminus, sleep, until } from './fake-broker';

let fake: FakeBroker | undefined;
let inc: AmqpIncoming | undefined;

afterEach(async () => {
  await inc?.close();
  await fake?.stop();
  inc = undefined;
  fake = undefined;
});

/**
 * A queue behind a fake broker: sends what it holds whenever a client receiver has credit, counts what is
 * unsettled, and takes back what is released or was unsettled on a dropped connection.
 */
class FakeQueue {
  readonly waiting: number[] = [];
  readonly unsettled = new Map<RheaDelivery, number>();
  readonly accepted: number[] = [];
  readonly released: number[] = [];
  maxUnsettled = 0;
  sent = 0;
  private senders = new Set<Sender>();

  constructor(n: number) {
    for (let i = 0; i < n; i++) this.waiting.push(i);
  }

  attach(s: Sender): void {
    s.set_source(remoteTerminus(s, 'source'));
    this.senders.add(s);
    // After rhea's tick: a disposition and the flow that follows it arrive together, but rhea reports the
    // disposition (accepted, released) only on its next tick, and it must count before the credit does.
    s.on('sendable', () => setImmediate(() => this.pump(s)));
    s.on('accepted', (ctx: EventContext) => this.settled(ctx, true));
    s.on('released', (ctx: EventContext) => this.settled(ctx, false));
  }

  /** The connection died: what was unsettled goes back to the front, as a broker does. */
  lost(): void {
    this.waiting.unshift(...[...this.unsettled.values()].sort((a, b) => a - b));
    this.unsettled.clear();
    this.senders.clear();
  }

  /**
   * One message per turn: rhea takes the credit off when it writes the transfer (on the next tick), not in
   * send(), so a loop on sendable() would queue far more than the credit in rhea's session buffer.
   */
  pump(s: Sender): void {
    if (!this.senders.has(s) || !s.sendable() || this.waiting.length === 0) return;
    const seq = this.waiting.shift() as number;
    const d = s.send({ body: rheaMessage.data_section(Buffer.from(`m${seq}`)), application_properties: { seq: String(seq) } });
    this.sent++;
    this.unsettled.set(d, seq);
    this.maxUnsettled = Math.max(this.maxUnsettled, this.unsettled.size);
    setImmediate(() => this.pump(s));
  }

  private settled(ctx: EventContext, accepted: boolean): void {
    const d = ctx.delivery as RheaDelivery;
    const seq = this.unsettled.get(d);
    if (seq === undefined) return;
    this.unsettled.delete(d);
    if (accepted) this.accepted.push(seq);
    else {
      this.released.push(seq);
      this.waiting.push(seq);
    }
    for (const s of this.senders) this.pump(s);
  }
}

async function startWith(q: FakeQueue): Promise<FakeBroker> {
  return new FakeBroker({ onSenderOpen: (s) => q.attach(s) }).start();
}

/** The next delivery, polling like the pipeline does. */
async function nextOf(i: AmqpIncoming, ms = 5000): Promise<Delivery> {
  const end = Date.now() + ms;
  for (;;) {
    const d = await i.next();
    if (d !== undefined && d !== null) return d;
    if (Date.now() > end) throw new Error('no delivery in time');
    await sleep(2);
  }
}

test('amqp incoming - never more than prefetch unsettled; credit comes back from settlements, never from arrivals', async () => {
  const q = new FakeQueue(60);
  fake = await startWith(q);
  inc = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 5 });
  await inc.open();
  await until(() => q.sent === 5, 'the first 5 deliveries');
  await sleep(100);
  // Nothing acked: the fake has no credit for a sixth one.
  expect(q.sent).toBe(5);
  expect(inc.unsettled).toBe(5);
  const got: string[] = [];
  let maxUnsettled = 0;
  while (got.length < 60) {
    const d = await nextOf(inc);
    maxUnsettled = Math.max(maxUnsettled, inc.unsettled);
    expect(d.message.getHeader('destination')).toBe('/queue/in');
    got.push(d.message.getHeader('seq') ?? '');
    if (got.length % 7 === 0) await sleep(3);
    await inc.ack(d.id);
  }
  await until(() => q.accepted.length === 60, 'all accepted');
  expect(got).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
  expect(q.maxUnsettled).toBeLessThanOrEqual(5);
  expect(maxUnsettled).toBeLessThanOrEqual(5);
  expect(inc.unsettled).toBe(0);
  expect(q.released).toEqual([]);
});

test('amqp incoming - each arrival is announced (onArrival) once next() can take it; once accepted nothing is held', async () => {
  const q = new FakeQueue(30);
  fake = await startWith(q);
  const i = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 5 });
  inc = i;
  const seqs: string[] = [];
  const taken: Promise<void>[] = [];
  i.onArrival(() => {
    taken.push(
      i.next().then((d) => {
        if (d === undefined || d === null) throw new Error('announced, but next() had nothing');
        seqs.push(d.message.getHeader('seq') as string);
        return i.ack(d.id);
      }),
    );
  });
  await i.open();
  await until(() => q.accepted.length === 30, 'all accepted');
  await Promise.all(taken);
  expect(seqs).toEqual(Array.from({ length: 30 }, (_, n) => String(n)));
  expect(i.unsettled).toBe(0);
});

test('amqp incoming - release() sends a released disposition; the message comes back', async () => {
  const q = new FakeQueue(3);
  fake = await startWith(q);
  inc = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 2 });
  await inc.open();
  const first = await nextOf(inc);
  expect(first.message.getHeader('seq')).toBe('0');
  await inc.release(first.id);
  await until(() => q.released.length === 1, 'the released disposition');
  expect(q.released).toEqual([0]);
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const d = await nextOf(inc);
    seen.push(d.message.getHeader('seq') ?? '');
    await inc.ack(d.id);
  }
  expect(seen.sort()).toEqual(['0', '1', '2']);
  await until(() => q.accepted.length === 3, 'all accepted');
});

test('amqp incoming - acks and releases given in the same turn reach the broker as given (rhea would merge them)', async () => {
  const q = new FakeQueue(4);
  fake = await startWith(q);
  inc = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 4 });
  await inc.open();
  const ds = [await nextOf(inc), await nextOf(inc), await nextOf(inc), await nextOf(inc)];
  expect(ds.map((d) => d.message.getHeader('seq'))).toEqual(['0', '1', '2', '3']);
  const [d0, d1, d2, d3] = ds as [Delivery, Delivery, Delivery, Delivery];
  // As a pipeline does when one send fails while its neighbours succeed: no await in between.
  await Promise.all([inc.ack(d0.id), inc.release(d1.id), inc.ack(d2.id), inc.release(d3.id)]);
  await until(() => q.accepted.length + q.released.length === 4, 'four outcomes');
  expect([...q.accepted].sort()).toEqual([0, 2]);
  expect([...q.released].sort()).toEqual([1, 3]);
});

test('amqp incoming - connection dropped: receivers re-attached with fresh credit, unsettled messages delivered again', async () => {
  const q = new FakeQueue(40);
  fake = await startWith(q);
  const events: AmqpConnectionEvent[] = [];
  inc = new AmqpIncoming(
    { uri: fake.uri, reconnect: { initialDelay: 5, maxDelay: 50 }, onEvent: (e) => events.push(e) },
    { subscribe: [{ destination: '/queue/in' }], prefetch: 10 },
  );
  await inc.open();
  const acked = new Set<string>();
  for (let i = 0; i < 15; i++) {
    const d = await nextOf(inc);
    acked.add(d.message.getHeader('seq') ?? '');
    await inc.ack(d.id);
  }
  // Three delivered but not acked yet when the connection dies: their acks are moot afterwards.
  const stale = [await nextOf(inc), await nextOf(inc), await nextOf(inc)];
  await until(() => q.accepted.length === 15, 'the first acks');
  fake.drop();
  q.lost();
  await until(() => events.some((e) => e.type === 'reconnected'), 'the reconnection');
  for (const d of stale) await inc.ack(d.id);
  const again: string[] = [];
  while (acked.size < 40) {
    const d = await nextOf(inc);
    const seq = d.message.getHeader('seq') ?? '';
    if (acked.has(seq)) again.push(seq);
    acked.add(seq);
    await inc.ack(d.id);
  }
  await until(() => q.accepted.length >= 40, 'all accepted');
  expect(q.waiting).toEqual([]);
  expect(q.maxUnsettled).toBeLessThanOrEqual(10);
  // What was unsettled on the dead connection was delivered again, not lost; what was acked was not repeated.
  for (const d of stale) expect(acked.has(d.message.getHeader('seq') ?? '')).toBe(true);
  expect(again).toEqual([]);
});

test('amqp incoming - a subscription the broker refuses fails open() with its condition', async () => {
  fake = await new FakeBroker({
    onSenderOpen: (s) => {
      const source = remoteTerminus(s, 'source');
      if (source.address === '/amq/queue/nope')
        s.close({ condition: 'amqp:not-found', description: "NOT_FOUND - no queue 'nope'" });
      else s.set_source(source);
    },
  }).start();
  inc = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/ok' }, { queue: 'nope' }] });
  const err = await inc.open().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AmqpBrokerError);
  expect(err).toMatchObject({ condition: 'amqp:not-found', code: 'ERR_AMQP_BROKER' });
  expect(String((err as Error).message)).toMatch(/receiver from \/amq\/queue\/nope: amqp:not-found: NOT_FOUND - no queue 'nope'/);
  // open() cleaned up after itself: its connection is closed.
  expect(inc.connection.connected).toBe(false);
});

test('amqp incoming - source terminus: queues durable 2, topics and exchanges 0, a selector as jms-selector filter', async () => {
  const sources: Record<string, unknown>[] = [];
  fake = await new FakeBroker({
    onSenderOpen: (s) => {
      const source = remoteTerminus(s, 'source');
      sources.push(source);
      s.set_source(source);
    },
  }).start();
  inc = new AmqpIncoming(
    { uri: fake.uri },
    {
      subscribe: [
        { destination: '/queue/a', selector: "colour = 'red'" },
        { destination: '/topic/news.#' },
        { exchange: 'logs', routing_key: 'error' },
        { queue: 'existing' },
      ],
    },
  );
  await inc.open();
  const byAddress = Object.fromEntries(sources.map((s) => [s.address, s]));
  expect(Object.keys(byAddress).sort()).toEqual(['/amq/queue/existing', '/exchange/logs/error', '/queue/a', '/topic/news.#']);
  expect(byAddress['/queue/a']).toMatchObject({ durable: 2 });
  expect(JSON.stringify(byAddress['/queue/a']?.filter)).toContain("colour = 'red'");
  expect(Object.keys(byAddress['/queue/a']?.filter as object)).toEqual(['jms-selector']);
  expect(byAddress['/amq/queue/existing']).toMatchObject({ durable: 2 });
  expect(byAddress['/topic/news.#']?.durable ?? 0).toBe(0);
  expect(byAddress['/exchange/logs/error']?.durable ?? 0).toBe(0);
});

test('amqp subscribe - amqpclt forms translate to RabbitMQ addresses; the others are refused', () => {
  expect(parseSubscription({ destination: '/queue/N' })).toEqual({ address: '/queue/N', durable: 2 });
  expect(parseSubscription({ destination: '/topic/a.b' })).toEqual({ address: '/topic/a.b', durable: 0 });
  expect(parseSubscription({ destination: '/exchange/X/RK' })).toEqual({ address: '/exchange/X/RK', durable: 0 });
  expect(parseSubscription({ destination: '/amq/queue/Q' })).toEqual({ address: '/amq/queue/Q', durable: 2 });
  expect(parseSubscription({ exchange: 'X', routing_key: 'RK' })).toEqual({ address: '/exchange/X/RK', durable: 0 });
  expect(parseSubscription({ exchange: 'amq.fanout' })).toEqual({ address: '/exchange/amq.fanout', durable: 0 });
  expect(parseSubscription({ queue: 'Q' })).toEqual({ address: '/amq/queue/Q', durable: 2 });
  expect(parseSubscription({ destination: '/topic/t', durable: 'true' })).toEqual({ address: '/topic/t', durable: 2 });
  expect(parseSubscription({ destination: 'plain', selector: 'a > 1' })).toEqual({
    address: 'plain',
    durable: 2,
    selector: 'a > 1',
  });
  const bads: Record<string, string>[] = [
    {},
    { destination: '' },
    { destination: '/queue/a', queue: 'b' },
    { exchange: 'X', queue: 'Q' },
    { queue: 'Q', routing_key: 'r' },
    { destination: '/queue/a', arguments: 'x' },
    { destination: '/queue/a', durable: 'maybe' },
  ];
  for (const bad of bads) {
    expect(() => parseSubscription(bad)).toThrow(AmqpSubscribeError);
  }
  expect(() => parseSubscription({ exchange: 'X', queue: 'Q' })).toThrow(/bind it beforehand and subscribe with queue=Q/);
  expect(() => new AmqpIncoming({ uri: 'amqp://h' }, { subscribe: [] })).toThrow(/no subscription/);
  expect(() => new AmqpIncoming({ uri: 'amqp://h' }, { subscribe: [{ queue: 'q' }], prefetch: 0 })).toThrow(/invalid prefetch/);
});

test('amqp incoming - ack auto accepts on arrival; close() releases what was delivered or buffered but not acked', async () => {
  const q = new FakeQueue(6);
  fake = await startWith(q);
  const auto = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 2, ack: 'auto' });
  await auto.open();
  await until(() => q.accepted.length === 6, 'all accepted without any ack');
  await auto.close();
  q.waiting.push(6, 7, 8);
  const client = new AmqpIncoming({ uri: fake.uri }, { subscribe: [{ destination: '/queue/in' }], prefetch: 2 });
  inc = client;
  await client.open();
  const d = await nextOf(client);
  expect(d.message.getHeader('seq')).toBe('6');
  // Both at the client (one handed out, one buffered): the fake counts a transfer as soon as it writes it.
  await until(() => client.unsettled === 2 && q.unsettled.size === 2, 'two unsettled');
  await client.close();
  await until(() => q.released.length === 2, 'both released on close');
  expect(q.released.sort()).toEqual([6, 7]);
  expect(q.accepted).toHaveLength(6);
});
