import { RejectedError } from '@msgbricks/agent';
import { type AmqpConnectionEvent, AmqpOutgoing } from '@msgbricks/amqp';
import { Message } from '@msgbricks/message';
import type { EventContext, Receiver, Message as RheaMessage } from 'rhea';
import { FakeBroker, remoteTerminus, sleep, until } from './fake-broker';

let fake: FakeBroker | undefined;
let out: AmqpOutgoing | undefined;

afterEach(async () => {
  await out?.close();
  await fake?.stop();
  out = undefined;
  fake = undefined;
});

const seqOf = (ctx: EventContext) => Number((ctx.message as RheaMessage).application_properties?.seq);
const msg = (seq: number, extra: Record<string, string> = {}) =>
  new Message({ header: { destination: '/queue/t', seq: String(seq), ...extra }, body: `body ${seq}` });

function outgoing(f: FakeBroker, events: AmqpConnectionEvent[] = []): AmqpOutgoing {
  out = new AmqpOutgoing(
    { uri: f.uri, reconnect: { initialDelay: 5, maxDelay: 50 }, onEvent: (e) => events.push(e) },
    { closeTimeout: 2000 },
  );
  return out;
}

test('amqp outgoing - send() resolves on accepted; the target is {address, durable: 2} and the sends unsettled', async () => {
  const got: RheaMessage[] = [];
  const attaches: Record<string, unknown>[] = [];
  fake = await new FakeBroker({
    onReceiverOpen: (r) => {
      attaches.push({ target: remoteTerminus(r, 'target'), snd_settle_mode: r.snd_settle_mode });
      r.set_target(remoteTerminus(r, 'target'));
    },
    onMessage: (ctx) => got.push(ctx.message as RheaMessage),
  }).start();
  const o = outgoing(fake);
  await o.open();
  await o.send(new Message({ header: { destination: '/queue/a', 'message-id': 'm1', colour: 'blue' }, body: 'héllo' }));
  await o.send(new Message({ header: { destination: '/queue/a', persistent: 'false' }, body: Buffer.from([0, 1]) }));
  expect(attaches).toEqual([{ target: expect.objectContaining({ address: '/queue/a', durable: 2 }), snd_settle_mode: 0 }]);
  expect(got).toHaveLength(2);
  expect(got[0]).toMatchObject({ durable: true, message_id: 'm1', content_type: 'text/plain; charset=UTF-8' });
  expect(got[0]?.application_properties).toEqual({ colour: 'blue' });
  expect((got[0]?.body as { content?: Buffer } | undefined)?.content).toEqual(Buffer.from('héllo', 'utf8'));
  expect(got[1]?.durable).toBe(false);
});

test('amqp outgoing - a rejected delivery rejects send() with RejectedError carrying the broker reason', async () => {
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      if (seqOf(ctx) === 1) ctx.delivery?.reject({ condition: 'amqp:precondition-failed', description: 'no thanks' });
      else ctx.delivery?.accept();
    },
  }).start();
  const o = outgoing(fake);
  await o.open();
  const bad = o.send(msg(1));
  const good = o.send(msg(2));
  await expect(bad).rejects.toThrow(RejectedError);
  await expect(bad).rejects.toThrow(/\/queue\/t rejected the message: amqp:precondition-failed: no thanks/);
  await expect(good).resolves.toBeUndefined();
});

test('amqp outgoing - one rejected among 1,000 in flight: that one is refused, the 999 others accepted, none sent twice', async () => {
  const transfers = new Map<number, number>();
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      const seq = seqOf(ctx);
      transfers.set(seq, (transfers.get(seq) ?? 0) + 1);
      if (seq === 500) ctx.delivery?.reject({ condition: 'amqp:not-found', description: 'no such exchange' });
      else ctx.delivery?.accept();
    },
  }).start();
  const o = outgoing(fake);
  await o.open();
  const outcomes = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => o.send(msg(i))));
  const rejected = outcomes.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason]] : []));
  expect(rejected).toHaveLength(1);
  expect(rejected[0]?.[0]).toBe(500);
  expect(rejected[0]?.[1]).toBeInstanceOf(RejectedError);
  // Per message: the refusal is that delivery's outcome, the link stays up, nothing is sent again.
  expect(transfers.size).toBe(1000);
  expect([...transfers.values()].every((n) => n === 1)).toBe(true);
});

test('amqp outgoing - a released delivery is sent again, then accepted', async () => {
  const seen: number[] = [];
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      seen.push(seqOf(ctx));
      // Each message is released twice before being accepted.
      if (seen.filter((s) => s === seqOf(ctx)).length <= 2) ctx.delivery?.release();
      else ctx.delivery?.accept();
    },
  }).start();
  const o = outgoing(fake);
  await o.open();
  await Promise.all([o.send(msg(1)), o.send(msg(2))]);
  expect(seen.filter((s) => s === 1)).toHaveLength(3);
  expect(seen.filter((s) => s === 2)).toHaveLength(3);
});

test('amqp outgoing - modified: sent again with delivery_count + 1 (delivery-failed); undeliverable-here refuses it', async () => {
  const counts: number[] = [];
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      const m = ctx.message as RheaMessage;
      if (seqOf(ctx) === 1) {
        counts.push(m.delivery_count ?? 0);
        if (counts.length === 1) ctx.delivery?.modified({ delivery_failed: true, message_annotations: { 'x-note': 'tried' } });
        else ctx.delivery?.accept();
      } else ctx.delivery?.modified({ undeliverable_here: true });
    },
  }).start();
  const o = outgoing(fake);
  await o.open();
  const refused = o.send(msg(2));
  await o.send(msg(1));
  expect(counts).toEqual([0, 1]);
  await expect(refused).rejects.toThrow(RejectedError);
  await expect(refused).rejects.toThrow(/undeliverable-here/);
});

test('amqp outgoing - connection dropped with 200 sends in flight: all resolve after the reconnection, each received at least once', async () => {
  const received = new Map<number, number>();
  let held: EventContext[] = [];
  let dropped = false;
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      received.set(seqOf(ctx), (received.get(seqOf(ctx)) ?? 0) + 1);
      // Before the drop nothing is settled: every delivery is still unsettled when the socket dies.
      if (dropped) ctx.delivery?.accept();
      else held.push(ctx);
    },
  }).start();
  const events: AmqpConnectionEvent[] = [];
  const o = outgoing(fake, events);
  await o.open();
  let resolved = 0;
  const sends = Array.from({ length: 200 }, (_, i) => o.send(msg(i)).then(() => void resolved++));
  await until(() => held.length >= 100, '100 messages at the fake');
  for (const ctx of held.slice(0, 10)) ctx.delivery?.accept();
  dropped = true;
  fake.drop();
  held = [];
  await Promise.all(sends);
  expect(resolved).toBe(200);
  for (let i = 0; i < 200; i++) expect(received.get(i)).toBeGreaterThanOrEqual(1);
  expect(events.map((e) => e.type)).toEqual(['connected', 'lost', 'connected', 'reconnected']);
});

test('amqp outgoing - credit granted one at a time: sends wait, nothing lost, nothing thrown', async () => {
  const errors = jest.spyOn(console, 'error');
  const received: number[] = [];
  const timers: NodeJS.Timeout[] = [];
  let maxCredit = 0;
  fake = await new FakeBroker({
    container: { credit_window: 0 },
    onReceiverOpen: (r: Receiver) => {
      r.set_target(remoteTerminus(r, 'target'));
      timers.push(
        setInterval(() => {
          const link = r as unknown as { credit: number };
          if (link.credit === 0) r.add_credit(1);
          maxCredit = Math.max(maxCredit, link.credit);
        }, 2),
      );
    },
    onMessage: (ctx) => received.push(seqOf(ctx)),
  }).start();
  try {
    const o = outgoing(fake);
    await o.open();
    const N = 150;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: N }, (_, i) => o.send(msg(i))));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(N * 2 * 0.5);
    expect(received).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(maxCredit).toBe(1);
    // rhea logs "Received transfer when credit was 0" when a sender overruns its credit.
    expect(errors).not.toHaveBeenCalled();
  } finally {
    for (const t of timers) clearInterval(t);
    errors.mockRestore();
  }
});

test('amqp outgoing - a destination the broker refuses to attach fails its messages with RejectedError; others go', async () => {
  let refusals = 0;
  fake = await new FakeBroker({
    onReceiverOpen: (r) => {
      const target = remoteTerminus(r, 'target');
      if (target.address !== '/queue/bad') return r.set_target(target);
      // A refusal as the spec has it: an attach with a null target, then a detach with the reason.
      refusals++;
      r.close({ condition: 'amqp:not-found', description: 'no such node' });
    },
  }).start();
  const events: AmqpConnectionEvent[] = [];
  const o = outgoing(fake, events);
  await o.open();
  const bad = [1, 2].map((i) => o.send(new Message({ header: { destination: '/queue/bad' }, body: `x${i}` })));
  await o.send(msg(3));
  for (const p of bad)
    await expect(p).rejects.toThrow(/cannot attach a sender to \/queue\/bad \(3 attempts\).*amqp:not-found: no such node/);
  expect(refusals).toBe(3);
  expect(events.filter((e) => e.type === 'link-error')).toHaveLength(3);
  // The cache entry starts over: a later message gets three more attempts.
  await expect(o.send(new Message({ header: { destination: '/queue/bad' }, body: 'again' }))).rejects.toThrow(RejectedError);
  expect(refusals).toBe(6);
  await o.send(msg(4));
});

test('amqp outgoing - a poison message that makes the broker end the session is found alone and refused; the rest go', async () => {
  const accepted = new Set<number>();
  const ended = new Set<unknown>();
  let poisonSeen = 0;
  fake = await new FakeBroker({
    container: { autoaccept: false },
    onMessage: (ctx) => {
      if (ended.has(ctx.session)) return;
      if ((ctx.message as RheaMessage).application_properties?.poison === 'yes') {
        poisonSeen++;
        // What RabbitMQ does for a user_id that is not the login: end the session, whatever else is in flight.
        ended.add(ctx.session);
        ctx.session?.close({ condition: 'amqp:precondition-failed', description: 'PRECONDITION_FAILED - poison' });
        return;
      }
      // Settle a little later, so that several messages are in flight when the poison arrives; a broker says
      // nothing more on a session it has ended.
      setTimeout(() => {
        if (ended.has(ctx.session)) return;
        ctx.delivery?.accept();
        accepted.add(seqOf(ctx));
      }, 5);
    },
  }).start();
  const o = outgoing(fake);
  await o.open();
  const sends = Array.from({ length: 30 }, (_, i) => o.send(msg(i, i === 10 ? { poison: 'yes' } : {})));
  const results = await Promise.allSettled(sends);
  const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason]] : []));
  expect(rejected.map(([i]) => i)).toEqual([10]);
  expect((rejected[0] as [number, Error])[1]).toBeInstanceOf(RejectedError);
  expect(String((rejected[0] as [number, Error])[1].message)).toMatch(/failed the link 3 times.*PRECONDITION_FAILED - poison/);
  // Once among the others, then three times alone.
  expect(poisonSeen).toBe(4);
  expect(accepted.size).toBe(29);
});

test('amqp outgoing - one cached sender per destination; past maxLinks the longest idle one is detached', async () => {
  const opened: string[] = [];
  const closed: string[] = [];
  fake = await new FakeBroker({
    onReceiverOpen: (r) => {
      const target = remoteTerminus(r, 'target');
      opened.push(target.address);
      r.on('receiver_close', () => closed.push(target.address));
      r.set_target(target);
    },
  }).start();
  out = new AmqpOutgoing({ uri: fake.uri }, { maxLinks: 2 });
  const o = out;
  await o.open();
  const to = (d: string) => o.send(new Message({ header: { destination: d }, body: d }));
  await to('/queue/a');
  await to('/queue/b');
  await to('/queue/a');
  await to('/queue/b');
  expect(opened).toEqual(['/queue/a', '/queue/b']);
  await to('/queue/c');
  await until(() => closed.length === 1, 'the detach of the idle sender');
  expect(closed).toEqual(['/queue/a']);
  await to('/queue/a');
  await until(() => closed.length === 2, 'another detach');
  expect(opened).toEqual(['/queue/a', '/queue/b', '/queue/c', '/queue/a']);
  expect(closed).toEqual(['/queue/a', '/queue/b']);
});

test('amqp outgoing - send() refuses a message without destination, a text body with a binary content-type, and before open()', async () => {
  fake = await new FakeBroker().start();
  const o = outgoing(fake);
  await expect(o.send(msg(1))).rejects.toThrow(/not open/);
  await o.open();
  await expect(o.send(new Message({ body: 'x' }))).rejects.toThrow(RejectedError);
  await expect(
    o.send(new Message({ header: { destination: '/queue/t', 'content-type': 'application/octet-stream' }, body: 'text' })),
  ).rejects.toThrow(/a text body with the non-text content-type/);
  await sleep(1);
});
