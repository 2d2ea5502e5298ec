import { join } from 'node:path';
import { QueueIncoming, QueueOutgoing, RejectedError, runPipeline } from '@msgbricks/agent';
import { DQS, Message } from '@msgbricks/message';
import { StompConnectError, StompConnection, type StompConnectionOptions, StompIncoming, StompOutgoing } from '@msgbricks/stomp';
import type { TlsBroker as Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import { removeDir, tempDir } from '@msgbricks/test-support';

jest.setTimeout(240_000);

let rabbit: Broker;
let amq: Broker;
let tmp: string;
let unique = 0;

beforeAll(async () => {
  [rabbit, amq] = await Promise.all([brokers.startRabbitMQ({ tls: true }), brokers.startActiveMQ({ tls: true })]);
  tmp = tempDir('stomp-interop-');
});

afterAll(async () => {
  await Promise.all([rabbit?.stop(), amq?.stop()]);
  if (tmp) removeDir(tmp);
});

function conn(b: Broker, extra: Partial<StompConnectionOptions> = {}): StompConnectionOptions {
  return { uri: `tcp://${b.host}:${b.ports.stomp}`, auth: [`plain name=${b.user} pass=${b.password}`], ...extra };
}

function queueName(b: Broker, what: string): string {
  return `/queue/msgbricks.${b.kind}.${what}.${process.pid}.${unique++}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads `n` deliveries (acking each) or fails after `ms`. */
async function receive(incoming: StompIncoming, n: number, ms = 60_000): Promise<Message[]> {
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
  const header = { seq: String(i), kind: i % 2 ? 'bin' : 'text', escaped: 'a:b\\c', persistent: 'true' };
  return new Message({ header, body: i % 2 ? binary(i) : `text ${i} Déjà vu ☺ ${'x'.repeat(i % 50)}` });
}

const each = () =>
  [
    ['RabbitMQ', () => rabbit],
    ['ActiveMQ', () => amq],
  ] as const;

describe.each(each())('stomp interop %s', (name, broker) => {
  test(`stomp ${name} - 1000 messages out and back in with identical headers and text/binary bodies`, async () => {
    const b = broker();
    const dest = queueName(b, 'roundtrip');
    const out = new StompOutgoing(conn(b), { destination: dest });
    await out.open();
    expect(out.connection.brokerType).toBe(name);
    expect(out.connection.version).toBe('1.2');
    const N = 1000;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: N }, (_, i) => out.send(sample(i))));
    const sendMs = Date.now() - t0;
    await out.close();
    const inc = new StompIncoming(conn(b), { subscribe: [{ destination: dest }], prefetch: 100 });
    await inc.open();
    const t1 = Date.now();
    const got = await receive(inc, N);
    const recvMs = Date.now() - t1;
    await inc.close();
    console.log(`${name}: ${N} receipted SENDs in ${sendMs} ms, ${N} MESSAGE+ACK in ${recvMs} ms`);
    got.sort((x, y) => Number(x.getHeader('seq')) - Number(y.getHeader('seq')));
    expect(got.map((m) => m.getHeader('seq'))).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    got.forEach((m, i) => {
      const want = sample(i);
      for (const [k, v] of want.headerEntries()) expect([k, m.getHeader(k)]).toEqual([k, v]);
      expect(m.getHeader('destination')).toBe(dest);
      expect(m.getHeader('message-id')).toBeDefined();
      expect(m.text).toBe(want.text);
      expect(m.body).toEqual(want.body);
      if (want.text) expect(m.getHeader('content-type')).toBe('text/plain; charset=UTF-8');
    });
  });

  test(`stomp ${name} - every MESSAGE is announced (onArrival) once next() can take it; once acked nothing is held`, async () => {
    const b = broker();
    const dest = queueName(b, 'arrival');
    const N = 50;
    const out = new StompOutgoing(conn(b), { destination: dest });
    await out.open();
    await Promise.all(Array.from({ length: N }, (_, i) => out.send(sample(i))));
    // Receipted: StompOutgoing keeps nothing per message.
    expect((out as unknown as { inflight: number }).inflight).toBe(0);
    await out.close();
    // A prefetch of 10: the broker sends more only as the announced deliveries are taken and acked.
    const inc = new StompIncoming(conn(b), { subscribe: [{ destination: dest }], prefetch: 10 });
    const seqs: string[] = [];
    const taken: Promise<void>[] = [];
    inc.onArrival(() => {
      taken.push(
        inc.next().then((d) => {
          if (d === undefined || d === null) throw new Error('announced, but next() had nothing');
          seqs.push(d.message.getHeader('seq') as string);
          return inc.ack(d.id);
        }),
      );
    });
    await inc.open();
    const until = Date.now() + 60_000;
    while (taken.length < N && Date.now() < until) await sleep(10);
    await Promise.all(taken);
    expect(seqs.sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    expect((inc as unknown as { pending: Map<string, unknown> }).pending.size).toBe(0);
    await inc.close();
  });

  test(`stomp ${name} - heart-beats keep an idle session up`, async () => {
    const events: string[] = [];
    const c = new StompConnection(conn(broker(), { heartBeat: [500, 500], onEvent: (e) => events.push(e.type) }));
    await c.open();
    await sleep(3000);
    expect(c.connected).toBe(true);
    expect(events).toEqual(['connected']);
    await c.close();
  });

  test(`stomp ${name} - TLS with the client certificate`, async () => {
    const b = broker();
    const uri = `ssl://${b.host}:${b.ports.stompSsl}`;
    // RabbitMQ maps the certificate's CN to the user (no login); ActiveMQ requires the certificate and takes any login.
    const auth = [`x509 cert=${b.tls.clientCertFile} key=${b.tls.clientKeyFile} ca_file=${b.tls.caFile}`];
    if (b.kind === 'activemq') auth.push(`plain name=${b.user} pass=${b.password}`);
    const dest = queueName(b, 'tls');
    const out = new StompOutgoing({ uri, auth }, { destination: dest });
    await out.open();
    await out.send(new Message({ header: { via: 'tls' }, body: Buffer.from([0, 1, 255]) }));
    await out.close();
    const inc = new StompIncoming({ uri, auth }, { subscribe: [{ destination: dest }] });
    await inc.open();
    const [m] = await receive(inc, 1);
    await inc.close();
    expect(m?.getHeader('via')).toBe('tls');
    expect(m?.body).toEqual(Buffer.from([0, 1, 255]));
    // Without the certificate the handshake is refused: a clear error, not a crash.
    const bare = new StompConnection({ uri, tls: { ca: b.tls.caFile }, auth: [`plain name=${b.user} pass=${b.password}`] });
    await expect(bare.open()).rejects.toThrow(StompConnectError);
    await bare.close();
  });

  test(`stomp ${name} - pipeline DQS -> broker -> DQS loses nothing`, async () => {
    const b = broker();
    const dest = queueName(b, 'pipeline');
    const a = new DQS(join(tmp, `${name}-a`));
    const z = new DQS(join(tmp, `${name}-z`));
    const N = 500;
    for (let i = 0; i < N; i++) await a.addMessage(sample(i));
    const s1 = await runPipeline(new QueueIncoming(a, { remove: true }), new StompOutgoing(conn(b), { destination: dest }), {
      window: 200,
    });
    expect([s1.received, s1.sent, await a.count()]).toEqual([N, N, 0]);
    const s2 = await runPipeline(
      new StompIncoming(conn(b), { subscribe: [{ destination: dest }], prefetch: 50 }),
      new QueueOutgoing(z),
      {
        count: N,
        timeoutInactivity: 30,
      },
    );
    expect([s2.received, s2.sent, await z.count()]).toEqual([N, N, N]);
    const seqs = new Set<string>();
    for await (const name of z) {
      expect(await z.lock(name)).toBe(true);
      const m = await z.getMessage(name);
      const want = sample(Number(m.getHeader('seq')));
      expect(m.body).toEqual(want.body);
      seqs.add(m.getHeader('seq') ?? '');
    }
    expect(seqs.size).toBe(N);
  });

  test(`stomp ${name} - a broker restart in the middle: sends are resent, the subscription comes back, nothing lost`, async () => {
    const b = broker();
    const dest = queueName(b, 'restart');
    const events: string[] = [];
    const opts = conn(b, { reconnect: { maxDelay: 500 }, onEvent: (e) => events.push(e.type) });
    const out = new StompOutgoing(opts, { destination: dest });
    const inc = new StompIncoming({ ...opts }, { subscribe: [{ destination: dest }], prefetch: 20 });
    await out.open();
    await inc.open();
    const N = 2000;
    let receipted = 0;
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
      sends.push(out.send(sample(i)).then(() => void receipted++));
      if (i === N / 4) {
        while (receipted < N / 8) await sleep(5);
        restarted = b.restart();
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
    expect(events).toContain('lost');
    expect(events).toContain('reconnected');
    expect(receipted).toBe(N);
    expect(seen.size).toBe(N);
  });
});

describe('stomp interop - broker specifics', () => {
  test('stomp RabbitMQ - a SEND the broker refuses rejects with RejectedError; the others still go', async () => {
    const out = new StompOutgoing(conn(rabbit, { reconnect: { maxDelay: 200 } }));
    await out.open();
    const ok = queueName(rabbit, 'ok');
    const good = [0, 1, 2].map((i) => out.send(new Message({ header: { destination: ok, n: `${i}` }, body: 'fine' })));
    const bad = out.send(new Message({ header: { destination: '/invalid/x' }, body: 'refused' }));
    await expect(bad).rejects.toThrow(RejectedError);
    await expect(bad).rejects.toThrow(/not a valid destination/);
    await Promise.all(good);
    await out.send(new Message({ header: { destination: ok, n: '3' }, body: 'after' }));
    await out.close();
    const inc = new StompIncoming(conn(rabbit), { subscribe: [{ destination: ok }] });
    await inc.open();
    // The ERROR was tied to the refused SEND (its destination quoted), so the session was kept and the others keep their receipts.
    const ns = new Set<string>();
    const until = Date.now() + 30_000;
    while (ns.size < 4 && Date.now() < until) for (const m of await receive(inc, 1)) ns.add(m.getHeader('n') ?? '');
    await inc.close();
    expect(ns).toEqual(new Set(['0', '1', '2', '3']));
  });

  test('stomp RabbitMQ - a wrong password gives a clear error, not a crash', async () => {
    const c = new StompConnection(conn(rabbit, { auth: ['plain name=guest pass=wrong'] }));
    const err = await c.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StompConnectError);
    expect(String((err as Error).message)).toMatch(/Access refused for user 'guest'/);
    await c.close();
    // The process is still fine and a good login works.
    const ok = new StompConnection(conn(rabbit));
    await ok.open();
    await ok.close();
  });

  test('stomp - nobody listening: a plain URI fails at once, a failover URI gives up after maxReconnectAttempts', async () => {
    const c1 = new StompConnection({ uri: 'tcp://127.0.0.1:1' });
    await expect(c1.open()).rejects.toThrow(/cannot connect to tcp:\/\/127\.0\.0\.1:1 \(1 attempt\).*ECONNREFUSED/);
    const c2 = new StompConnection({
      uri: 'failover:(tcp://127.0.0.1:1,tcp://127.0.0.1:2)?maxReconnectAttempts=3&initialReconnectDelay=1',
    });
    await expect(c2.open()).rejects.toThrow(/\(4 attempts\)/);
  });

  test('stomp ActiveMQ - a selector subscription gets only what matches', async () => {
    const dest = queueName(amq, 'selector');
    const out = new StompOutgoing(conn(amq), { destination: dest });
    await out.open();
    for (let i = 0; i < 20; i++)
      await out.send(new Message({ header: { color: i % 4 === 0 ? 'blue' : 'red', n: `${i}` }, body: `m${i}` }));
    await out.close();
    const inc = new StompIncoming(conn(amq), { subscribe: [{ destination: dest, selector: "color = 'blue'" }] });
    await inc.open();
    const got = await receive(inc, 5);
    await sleep(500);
    expect(await inc.next()).toBeUndefined();
    await inc.close();
    expect(got.map((m) => m.getHeader('n'))).toEqual(['0', '4', '8', '12', '16']);
    expect(got.every((m) => m.getHeader('color') === 'blue')).toBe(true);
  });
});
