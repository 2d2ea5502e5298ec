import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Consumer, type Consumer as ConsumerT, type MegabusEvent, Publisher, type ResolvedAddress } from '@msgbricks/megabus';
import type { Broker, TlsBroker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import { freePorts, layout, removeDir, tempDir } from '@msgbricks/test-support';

// Two independent RabbitMQ nodes and one ActiveMQ behind one alias, `mb.test`, resolved by a table the tests change.
jest.setTimeout(240_000);

const ALIAS = 'mb.test';
let rabbitA: TlsBroker;
let rabbitB: Broker;
let amq: Broker;
let tmp: string;
let unique = 0;
let alias: Broker[] = [];
/** Addresses in the alias that no broker listens on. */
let dead: number[] = [];
/** The port of a broker the alias lists: STOMP unless a test says otherwise. */
const STOMP_PORT = (b: Broker) => b.ports.stomp;
let portOf: (b: Broker) => number = STOMP_PORT;

const resolver = async (name: string): Promise<ResolvedAddress[]> =>
  name === ALIAS
    ? [...alias.map((b) => ({ address: b.host, port: portOf(b) })), ...dead.map((port) => ({ address: '127.0.0.1', port }))]
    : [];
const id = (b: Broker) => `${b.host}:${b.ports.stomp}`;

beforeAll(async () => {
  [rabbitA, rabbitB, amq] = await Promise.all([
    brokers.startRabbitMQ({ tls: true }),
    brokers.startRabbitMQ(),
    brokers.startActiveMQ(),
  ]);
  tmp = tempDir('megabus-interop-');
});

afterAll(async () => {
  await Promise.all([rabbitA?.stop(), rabbitB?.stop(), amq?.stop()]);
  removeDir(tmp);
});

/** A configuration file of the alias (plain STOMP, guest), with fast timers, plus `extra` lines. */
const GUEST = [`server: ${ALIAS}`, 'auth_method: password', 'user: guest', 'password: guest'];

function configFile(destination: string, extra: string[] = [], head = GUEST): string {
  const file = join(tmp, `megabus-${unique++}.yaml`);
  const lines = [
    ...head,
    `destination: ${destination}`,
    'resolve_interval: 0.2',
    'connect_timeout: 5',
    'max_reconnect_delay: 0.5',
    ...extra,
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const queue = (what: string) => `/queue/megabus.${what}.${process.pid}.${unique++}`;

interface Got {
  seq: number;
  broker: string;
}

function consumer(file: string, got: Got[], events: MegabusEvent[] = [], delay = 0): ConsumerT {
  return new Consumer({
    config: file,
    resolver,
    onEvent: (e) => events.push(e),
    handler: async (m, { broker }) => {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      got.push({ seq: Number(m.header.seq), broker });
    },
  });
}

async function until(what: string, cond: () => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const distinct = (got: Got[]) => new Set(got.map((g) => g.seq)).size;

describe('megabus interop', () => {
  test('megabus - x509 over TLS, the defaults: the client certificate is the login, the name checked is servername', async () => {
    alias = [rabbitA];
    dead = [];
    portOf = () => rabbitA.ports.stompSsl;
    try {
      const t = rabbitA.tls;
      const file = configFile(
        queue('x509'),
        [],
        [`server: ${ALIAS}`, `cert: ${t.clientCertFile}`, `key: ${t.clientKeyFile}`, `ca: ${t.caFile}`, 'servername: localhost'],
      );
      const got: Got[] = [];
      const c = consumer(file, got);
      expect(c.config).toMatchObject({ tls: true, auth: { method: 'x509' }, brokers: { port: 61614 } });
      await c.start();
      const p = new Publisher({ config: file, resolver });
      for (let i = 0; i < 5; i++) await p.send(`message ${i}`, { seq: String(i) });
      await p.close();
      await until('every message', () => distinct(got) === 5);
      await c.stop();
      expect(got.map((g) => g.broker)).toEqual(Array(5).fill(`${rabbitA.host}:${rabbitA.ports.stompSsl}`));
    } finally {
      portOf = STOMP_PORT;
    }
  });

  test('megabus - a message published to any broker reaches a consumer connected to all', async () => {
    alias = [rabbitA, rabbitB, amq];
    dead = [];
    // reconnect_interval 0: the publisher picks a broker again for every message.
    const file = configFile(queue('any'), ['publisher:', '  reconnect_interval: 0']);
    const got: Got[] = [];
    const c = consumer(file, got);
    await c.start();
    expect(c.brokers.map((b) => b.broker).sort()).toEqual(alias.map(id).sort());
    const p = new Publisher({ config: file, resolver });
    const N = 30;
    for (let i = 0; i < N; i++) await p.send(`message ${i}`, { seq: String(i) });
    await p.close();
    await until('every message', () => distinct(got) === N);
    await c.stop();
    expect(distinct(got)).toBe(N);
    // At random among three brokers, 30 messages all miss one broker with probability 3 * (2/3)^30 (2e-5).
    expect(new Set(got.map((g) => g.broker))).toEqual(new Set(alias.map(id)));
  });

  test('megabus - send_to_all: every broker gets every message', async () => {
    alias = [rabbitA, rabbitB, amq];
    dead = [];
    const file = configFile(queue('all'), ['publisher:', '  send_to_all: true']);
    const got: Got[] = [];
    const c = consumer(file, got);
    await c.start();
    const p = new Publisher({ config: file, resolver });
    for (let i = 0; i < 5; i++) await p.send(`message ${i}`, { seq: String(i) });
    await p.close();
    await until('every copy', () => got.length === 15);
    await c.stop();
    for (const b of alias)
      expect(
        got
          .filter((g) => g.broker === id(b))
          .map((g) => g.seq)
          .sort(),
      ).toEqual([0, 1, 2, 3, 4]);
  });

  test('megabus - AMQP 1.0: the RabbitMQ nodes through their AMQP ports, publish to any, consume from all', async () => {
    alias = [rabbitA, rabbitB];
    dead = [];
    portOf = (b) => b.ports.amqp as number;
    try {
      const file = configFile(queue('amqp'), ['protocol: amqp', 'publisher:', '  reconnect_interval: 0']);
      const got: Got[] = [];
      const c = consumer(file, got);
      await c.start();
      const p = new Publisher({ config: file, resolver });
      const N = 20;
      for (let i = 0; i < N; i++) await p.send(`message ${i}`, { seq: String(i) });
      await p.close();
      await until('every message', () => distinct(got) === N);
      await c.stop();
      // Both nodes were used: 20 picks miss one of two with probability 2 * 2^-20.
      expect(new Set(got.map((g) => g.broker))).toEqual(new Set(alias.map((b) => `${b.host}:${b.ports.amqp}`)));
    } finally {
      portOf = STOMP_PORT;
    }
  });

  test('megabus - a message is acknowledged only once the handler returned (a throw, a stop in the middle give it back); a filter', async () => {
    alias = [rabbitB];
    dead = [];
    const file = configFile(queue('ack'));
    const p = new Publisher({ config: file, resolver });
    await p.send('one', { seq: '1' });
    await p.close();
    let calls = 0;
    let release = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const events: MegabusEvent[] = [];
    const c1 = new Consumer({
      config: file,
      resolver,
      stopTimeout: 200,
      onEvent: (e) => events.push(e),
      handler: async () => {
        if (++calls === 1) throw new Error('not now');
        await blocked;
      },
    });
    await c1.start();
    await until('the second call', () => calls === 2);
    expect(events).toContainEqual(expect.objectContaining({ type: 'handler-failed', broker: id(rabbitB) }));
    // The handler never returns before the stop: the message is not acknowledged, the next consumer gets it.
    await c1.stop();
    release();
    const got: Got[] = [];
    // A client-side filter: what it refuses is consumed without reaching the handler.
    const c2 = new Consumer({
      config: file,
      resolver,
      filter: (m) => m.header.seq !== '2',
      handler: (m, { broker }) => {
        got.push({ seq: Number(m.header.seq), broker });
      },
    });
    await c2.start();
    const p2 = new Publisher({ config: file, resolver });
    for (const seq of ['2', '3']) await p2.send(seq, { seq });
    await p2.close();
    await until('delivered again, and the last one', () => got.length === 2);
    await c2.stop();
    expect(got).toEqual([
      { seq: 1, broker: id(rabbitB) },
      { seq: 3, broker: id(rabbitB) },
    ]);
  });

  test('megabus - a consumer without a handler writes to its spool and acknowledges once the message is there', async () => {
    alias = [rabbitB];
    dead = [];
    const spool = join(tmp, `consumer-spool-${unique++}`);
    const file = configFile(queue('cspool'), ['consumer:', `  spool: ${spool}`]);
    const p = new Publisher({ config: file, resolver });
    for (let i = 0; i < 10; i++) await p.send(`message ${i}`, { seq: String(i) });
    await p.close();
    const c = new Consumer({ config: file, resolver });
    await c.start();
    const count = () => layout(spool).filter((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(f)).length;
    await until('ten elements', () => fs.existsSync(spool) && count() === 10);
    await c.stop();
    const py = spawnSync(
      brokers.PYTHON,
      ['-c', 'import sys, dirq.QueueSimple as q; print(q.QueueSimple(sys.argv[1]).count())', spool],
      { encoding: 'utf8' },
    );
    expect(py.stdout.trim()).toBe('10');
    // Acknowledged: the next consumer of the queue finds only a marker sent after them.
    const marker = new Publisher({ config: file, resolver });
    await marker.send('marker', { seq: '-1' });
    await marker.close();
    const got: Got[] = [];
    const again = consumer(file, got);
    await again.start();
    await until('the marker', () => got.length > 0);
    await again.stop();
    expect(got).toEqual([{ seq: -1, broker: id(rabbitB) }]);
  });

  test('megabus - one broker killed mid-way loses nothing: the publisher fails over, the consumer gets it back', async () => {
    alias = [rabbitA, rabbitB, amq];
    dead = [];
    const file = configFile(queue('killed'), ['publisher:', '  reconnect_interval: 0.5']);
    const got: Got[] = [];
    const events: MegabusEvent[] = [];
    const c = consumer(file, got);
    await c.start();
    const p = new Publisher({ config: file, resolver, onEvent: (e) => events.push(e) });
    let N = 300;
    let seq = 0;
    const send = (n: number) =>
      Promise.all(
        Array.from({ length: Math.min(n, N - seq) }, () => {
          const s = seq++;
          return p.send(`message ${s}`, { seq: String(s) });
        }),
      );
    while (seq < 100) await send(10);
    // A connection made from now on: one found at once is young (the publisher keeps a broker 0.5 s).
    const mark = events.length;
    const using = () =>
      events
        .slice(mark)
        .filter((e) => e.type === 'connected')
        .at(-1)?.broker;
    // rabbitB dies while the publisher uses it, with sends in flight there: the picks are random (a kill while the
    // publisher happened to be elsewhere, or landing after the sends, proved no failover: seen once in CI).
    N = Number.MAX_SAFE_INTEGER;
    const deadline = Date.now() + 60_000;
    while (using() !== id(rabbitB) && Date.now() < deadline) {
      await send(1);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(using()).toBe(id(rabbitB));
    N = seq + 200;
    const inFlight = send(10);
    const killed = rabbitB.kill();
    await inFlight;
    while (seq < N) await send(10);
    await killed;
    expect(events.some((e) => e.type === 'broker-failed' && e.broker === id(rabbitB))).toBe(true);
    await p.close();
    // What rabbitB confirmed before it died comes back with it.
    await rabbitB.restart();
    await until('every message', () => distinct(got) === N, 120_000);
    await c.stop();
    expect(distinct(got)).toBe(N);
    // Duplicates within the windows: the 10 sends in flight when rabbitB died (sent again elsewhere), and what the
    // consumer had from rabbitB without its acknowledgement getting through (at most the prefetch, 100).
    expect(got.length - N).toBeLessThanOrEqual(10 + 100);
  });

  test('megabus - a broker removed from the alias is drained before its connection closes', async () => {
    const dest = queue('drain');
    // Messages waiting on rabbitA only, sent there through a static list.
    const direct = configFile(dest, [], [`servers: ["${id(rabbitA)}"]`, ...GUEST.slice(1)]);
    const p = new Publisher({ config: direct });
    const N = 60;
    for (let i = 0; i < N; i++) await p.send(`message ${i}`, { seq: String(i) });
    await p.close();
    alias = [rabbitA, rabbitB, amq];
    dead = [];
    const file = configFile(dest, ['consumer:', '  prefetch: 5', '  drain_quiet: 1']);
    const got: Got[] = [];
    const events: MegabusEvent[] = [];
    // A slow handler: draining takes about 60 * 30 ms, well after rabbitA left the alias.
    const c = consumer(file, got, events, 30);
    await c.start();
    alias = [rabbitB, amq];
    await until('drained', () => events.some((e) => e.type === 'drained'));
    const drainingAt = events.findIndex((e) => e.type === 'draining' && e.broker === id(rabbitA));
    expect(drainingAt).toBeGreaterThanOrEqual(0);
    expect(got.length).toBeGreaterThanOrEqual(N);
    expect(distinct(got)).toBe(N);
    expect(got.every((g) => g.broker === id(rabbitA))).toBe(true);
    expect(events.find((e) => e.type === 'drained')).toEqual({ type: 'drained', broker: id(rabbitA) });
    expect(c.brokers.map((b) => b.broker).sort()).toEqual([id(rabbitB), id(amq)].sort());
    await c.stop();
  });

  test('megabus - a broker added to the alias starts being used by the publisher and the consumer', async () => {
    alias = [rabbitA];
    dead = [];
    const file = configFile(queue('added'), ['publisher:', '  reconnect_interval: 0.1']);
    const got: Got[] = [];
    const events: MegabusEvent[] = [];
    const c = consumer(file, got, events);
    await c.start();
    const p = new Publisher({ config: file, resolver });
    await p.send('before', { seq: '0' });
    await until('the first message', () => got.length > 0);
    alias = [rabbitA, amq];
    await until('amq subscribed', () => c.brokers.some((b) => b.broker === id(amq)));
    expect(events).toContainEqual({ type: 'broker-added', broker: id(amq) });
    let seq = 1;
    for (; !got.some((g) => g.broker === id(amq)) && seq < 200; seq++) {
      await p.send(`message ${seq}`, { seq: String(seq) });
      await new Promise((r) => setTimeout(r, 20));
    }
    await until('a message through amq', () => got.some((g) => g.broker === id(amq)));
    await p.close();
    await c.stop();
  });

  test('megabus - the spool is an ordinary python-dirq one: stompclt forwards what the publisher spooled, in order', async () => {
    const [closed] = await freePorts(1);
    alias = [];
    dead = [closed as number];
    const spool = join(tmp, `spool-${unique++}`);
    const file = configFile(queue('stompclt'), ['publisher:', `  spool: ${spool}`]);
    const p = new Publisher({ config: file, resolver });
    for (let i = 0; i < 5; i++) await p.send(`message ${i}`, { seq: String(i) });
    await p.close();
    const stompclt = join(__dirname, '..', '..', '..', 'agents', 'stompclt', 'dist', 'main.js');
    const r = spawnSync(
      process.execPath,
      [
        stompclt,
        '--incoming-queue',
        `path=${spool}`,
        '--outgoing-broker-uri',
        `stomp://${rabbitB.host}:${rabbitB.ports.stomp}`,
        '--outgoing-broker-auth',
        'plain name=guest pass=guest',
        '--reliable',
        '--remove',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (r.status !== 0) throw new Error(`stompclt exited ${r.status}: ${r.stderr}`);
    expect(layout(spool).filter((f) => !f.endsWith('/'))).toEqual([]);
    alias = [rabbitB];
    dead = [];
    const got: Got[] = [];
    const c = consumer(file, got);
    await c.start();
    await until('every message', () => got.length === 5);
    await c.stop();
    expect(got.map((g) => g.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  test('megabus - every broker down: send succeeds into the spool, which is forwarded in order once a broker starts', async () => {
    const [closed] = await freePorts(1);
    alias = [rabbitA];
    dead = [closed as number];
    const spool = join(tmp, `spool-${unique++}`);
    const file = configFile(queue('spool'), ['publisher:', `  spool: ${spool}`]);
    await rabbitA.kill();
    const events: MegabusEvent[] = [];
    const p = new Publisher({ config: file, resolver, onEvent: (e) => events.push(e) });
    const N = 50;
    for (let i = 0; i < N; i++) await p.send(`message ${i}`, { seq: String(i) });
    expect(await p.spooled()).toBe(N);
    // The ordinary python-dirq layout, which python-dirq (and so stompclt) reads.
    // At most the head element is locked (.lck): the forwarder is trying it.
    const files = layout(spool).filter((f) => !f.endsWith('/'));
    expect(files.filter((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(f))).toHaveLength(N);
    expect(files.filter((f) => f.endsWith('.lck')).length).toBeLessThanOrEqual(1);
    expect(files.every((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}(\.lck)?$/.test(f))).toBe(true);
    const py = spawnSync(
      brokers.PYTHON,
      ['-c', 'import sys, dirq.QueueSimple as q; print(q.QueueSimple(sys.argv[1]).count())', spool],
      { encoding: 'utf8' },
    );
    expect(py.stdout.trim()).toBe(String(N));
    await rabbitA.restart();
    // New messages after the outage go after the spooled ones.
    for (let i = N; i < N + 10; i++) await p.send(`message ${i}`, { seq: String(i) });
    const got: Got[] = [];
    const c = consumer(file, got);
    await c.start();
    await until('every message', () => distinct(got) === N + 10, 120_000);
    expect(await p.drain(120_000)).toBe(0);
    expect(events.some((e) => e.type === 'spool-drained')).toBe(true);
    await p.close();
    await c.stop();
    const firsts = got.map((g) => g.seq).filter((s, i, all) => all.indexOf(s) === i);
    expect(firsts).toEqual(Array.from({ length: N + 10 }, (_, i) => i));
    expect(layout(spool).filter((f) => !f.endsWith('/'))).toEqual([]);
  });
});
