/**
 * stompclt against real brokers: a private RabbitMQ and ActiveMQ (@msgbricks/test-support, docs/brokers.md), both with
 * TLS, started once. Every transfer spawns the built command, as users run it.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import type { TlsBroker as Broker } from '@msgbricks/test-support';

import * as brokers from '@msgbricks/test-support';
import {
  CLI,
  checkBuilt,
  type DriverMessage,
  inNamespace,
  locks,
  type Result,
  readAll,
  start,
  tempDir,
  waitFor,
} from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
let amq: Broker;
let tmp: string;
let unique = 0;

beforeAll(async () => {
  checkBuilt();
  [rabbit, amq] = await Promise.all([brokers.startRabbitMQ({ tls: true }), brokers.startActiveMQ({ tls: true })]);
  tmp = tempDir();
});

afterAll(async () => {
  await Promise.all([rabbit?.stop(), amq?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the built command in the background (not spawnSync: the test keeps running) and waits for its exit. */
async function run(args: string[], ms = 180_000): Promise<Result> {
  const r = start(args, tmp);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), ms);
  try {
    return await r.done;
  } finally {
    clearTimeout(timer);
  }
}

function expectOk(r: Result): void {
  if (r.status !== 0) throw new Error(`stompclt exited ${r.status}:\n${r.err}`);
}

const uri = (b: Broker) => `tcp://${b.host}:${b.ports.stomp}`;
const plain = (b: Broker) => `plain name=${b.user} pass=${b.password}`;
const x509 = (b: Broker) => `x509 cert=${b.tls.clientCertFile} key=${b.tls.clientKeyFile} ca_file=${b.tls.caFile}`;
const dir = (what: string) => join(tmp, `${what}-${unique++}`);
const dest = (b: Broker, what: string) => `/queue/msgbricks.stompclt.${b.kind}.${what}.${process.pid}.${unique++}`;

const binary = (i: number) => Buffer.from([0, 255, i & 0xff, 0, 10, 13, 0xfe, 0, (i >> 8) & 0xff]);

function sample(i: number, destination: string): Message {
  const header = {
    destination,
    persistent: 'true',
    seq: String(i),
    kind: i % 2 ? 'bin' : 'text',
    'x-escaped': 'a:b\\c',
    'x-unicode': 'Déjà vu ☺',
  };
  return new Message({ header, body: i % 2 ? binary(i) : `text ${i} Déjà vu ☺ ${'x'.repeat(i % 50)}` });
}

async function fillSamples(path: string, n: number, destination: string, from = 0): Promise<Message[]> {
  const q = new DQS(path);
  const out: Message[] = [];
  for (let i = from; i < from + n; i++) {
    const m = sample(i, destination);
    await q.addMessage(m);
    out.push(m);
  }
  return out;
}

const bySeq = (ms: Message[]) => [...ms].sort((x, y) => Number(x.getHeader('seq')) - Number(y.getHeader('seq')));

/** Every message arrived once, with its body and every header it was sent with (the broker adds its own). */
function expectSame(got: Message[], want: Message[], headersToo = true): void {
  const g = bySeq(got);
  expect(g.map((m) => m.getHeader('seq'))).toEqual(want.map((m) => m.getHeader('seq')));
  g.forEach((m, i) => {
    const w = want[i] as Message;
    expect(m.text).toBe(w.text);
    expect(m.body).toEqual(w.body);
    if (headersToo) for (const [k, v] of w.headerEntries()) expect([k, m.getHeader(k)]).toEqual([k, v]);
  });
}

/** Drains a destination into a new DQS with stompclt (broker -> queue, reliable); returns its messages. */
async function drain(b: Broker, destination: string, args: string[] = []): Promise<{ messages: Message[]; ms: number }> {
  const out = dir('drained');
  const t0 = Date.now();
  const r = await run([
    '--incoming-broker-uri',
    uri(b),
    '--incoming-broker-auth',
    plain(b),
    '--subscribe',
    `destination=${destination}`,
    '--outgoing-queue',
    `path=${out}`,
    '--reliable',
    ...args,
  ]);
  expectOk(r);
  return { messages: await readAll(out, 'DQS'), ms: Date.now() - t0 };
}

const each = () =>
  [
    ['RabbitMQ', () => rabbit],
    ['ActiveMQ', () => amq],
  ] as const;

describe.each(each())('stompclt with %s', (name, broker) => {
  test(`stompclt - ${name}: queue -> broker -> queue of 10,000 text and binary messages, --reliable --remove`, async () => {
    const b = broker();
    const d = dest(b, 'roundtrip');
    const spoolIn = dir('in');
    const N = 10_000;
    const sent = await fillSamples(spoolIn, N, d);
    const t0 = Date.now();
    const r1 = await run([
      '--incoming-queue',
      `path=${spoolIn}`,
      '--outgoing-broker-uri',
      uri(b),
      '--outgoing-broker-auth',
      plain(b),
      '--reliable',
      '--remove',
      '--statistics',
    ]);
    const sendMs = Date.now() - t0;
    expectOk(r1);
    expect(r1.out).toMatch(new RegExp(`^count: ${N} messages$`, 'm'));
    expect(await new DQS(spoolIn).count()).toBe(0);
    expect(locks(spoolIn)).toEqual([]);
    const { messages, ms } = await drain(b, d, ['--count', `${N}`, '--timeout-inactivity', '15']);
    console.log(`stompclt ${name}: ${N} messages queue -> broker in ${sendMs} ms, broker -> queue in ${ms} ms`);
    expect(messages.length).toBe(N);
    expectSame(messages, sent);
    for (const m of messages) {
      expect(m.getHeader('message-id')).toBeDefined();
      if (m.text) expect(m.getHeader('content-type')).toBe('text/plain; charset=UTF-8');
    }
    // Nothing is left on the broker.
    const rest = await drain(b, d, ['--timeout-inactivity', '2']);
    expect(rest.messages).toEqual([]);
  });

  test(`stompclt - ${name}: broker -> broker shovel with a callback deleting message-id and co`, async () => {
    const b = broker();
    const from = dest(b, 'shovel-a');
    const to = dest(b, 'shovel-b');
    const spoolIn = dir('in');
    const N = 200;
    const sent = await fillSamples(spoolIn, N, from);
    expectOk(await run(['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', uri(b), '--reliable', '--remove']));
    const code = `for (const k of ['message-id', 'timestamp', 'expires', 'subscription', 'ack', 'redelivered']) delete hdr[k];
      hdr.destination = '${to}'; hdr.shoveled = 'yes';`;
    const r = await run([
      '--incoming-broker-uri',
      uri(b),
      '--incoming-broker-auth',
      plain(b),
      '--subscribe',
      `destination=${from}`,
      '--outgoing-broker-uri',
      uri(b),
      '--outgoing-broker-auth',
      plain(b),
      '--reliable',
      '--count',
      `${N}`,
      '--callback-code',
      code,
      '--statistics',
    ]);
    expectOk(r);
    expect(r.out).toMatch(new RegExp(`^count: ${N} messages$`, 'm'));
    const { messages } = await drain(b, to, ['--count', `${N}`, '--timeout-inactivity', '15']);
    const want = sent.map((m) => m.with({ header: { ...m.header, destination: to, shoveled: 'yes' } }));
    expectSame(messages, want);
    expect((await drain(b, from, ['--timeout-inactivity', '2'])).messages).toEqual([]);
  });

  test(`stompclt - ${name}: Config::General files with <outgoing-broker>, <auth> and <subscribe> blocks`, async () => {
    const b = broker();
    const d = dest(b, 'config');
    const spoolIn = dir('in');
    const spoolOut = dir('out');
    const sent = await fillSamples(spoolIn, 50, d);
    const auth = `  <auth>\n    scheme = plain\n    name = ${b.user}\n    pass = ${b.password}\n  </auth>\n`;
    const send = join(tmp, `send-${unique++}.conf`);
    fs.writeFileSync(
      send,
      `<incoming-queue>\n  path = ${spoolIn}\n</incoming-queue>\n<outgoing-broker>\n  uri = ${uri(b)}\n${auth}</outgoing-broker>\nreliable = 1\nremove = 1\n`,
    );
    const recv = join(tmp, `recv-${unique++}.conf`);
    fs.writeFileSync(
      recv,
      `<incoming>\n  <broker>\n    uri = ${uri(b)}\n${auth}  </broker>\n</incoming>\n<subscribe>\n  destination = ${d}\n</subscribe>\n` +
        `outgoing-queue = "path=${spoolOut} type=DQN"\nreliable = 1\ncount = 50\ntimeout-inactivity = 15\n`,
    );
    expectOk(await run(['--config', send]));
    expect(await new DQS(spoolIn).count()).toBe(0);
    expectOk(await run(['--config', recv]));
    expectSame(await readAll(spoolOut, 'DQN'), sent);
  });

  test(`stompclt - ${name}: TLS with the client certificate on both sides`, async () => {
    const b = broker();
    const d = dest(b, 'tls');
    const spoolIn = dir('in');
    const spoolOut = dir('out');
    const sent = await fillSamples(spoolIn, 100, d);
    const ssl = `ssl://${b.host}:${b.ports.stompSsl}`;
    const r1 = await run([
      '--incoming-queue',
      `path=${spoolIn}`,
      '--outgoing-broker-uri',
      ssl,
      '--outgoing-broker-auth',
      x509(b),
      '--reliable',
      '--remove',
    ]);
    expectOk(r1);
    expect(r1.err).toMatch(new RegExp(`connected to the broker side=outgoing server=${ssl.replace(/[./]/g, '\\$&')}`));
    const r2 = await run([
      '--incoming-broker-uri',
      `failover:(${ssl})?randomize=false`,
      '--incoming-broker-auth',
      x509(b),
      '--subscribe',
      `destination=${d}`,
      '--outgoing-queue',
      `path=${spoolOut}`,
      '--reliable',
      '--count',
      '100',
      '--timeout-inactivity',
      '15',
      '--heart-beat',
      '--timeout-client',
      '2',
      '--timeout-server',
      '2',
    ]);
    expectOk(r2);
    expectSame(await readAll(spoolOut, 'DQS'), sent);
  });

  test(`stompclt - ${name}: the broker restarted during a queue -> broker transfer, every message arrives`, async () => {
    const b = broker();
    const d = dest(b, 'restart');
    const spoolIn = dir('in');
    fs.mkdirSync(spoolIn);
    const agent = start(
      [
        '--incoming-queue',
        `path=${spoolIn}`,
        '--outgoing-broker-uri',
        uri(b),
        '--outgoing-broker-auth',
        plain(b),
        '--outgoing-broker-reconnect',
        'initial-delay=0.1 max-delay=1',
        '--reliable',
        '--remove',
        '--loop',
      ],
      tmp,
    );
    // A producer keeps spooling while the broker goes down and comes back.
    let producing = true;
    let produced = 0;
    let maxSpool = 0;
    const spool = new DQS(spoolIn);
    const producer = (async () => {
      while (producing) {
        await fillSamples(spoolIn, 10, d, produced);
        produced += 10;
        await sleep(50);
      }
    })();
    const watcher = setInterval(() => {
      spool
        .count()
        .then((n) => {
          maxSpool = Math.max(maxSpool, n);
        })
        .catch(() => undefined);
    }, 200);
    try {
      // Restarted once the agent is connected (its first connection is a single attempt for a plain URI: a fixed
      // delay restarted the broker before it on a loaded machine), and sending: some of the spool is gone.
      await waitFor('the agent connected', () => /connected to the broker/.test(agent.err()), 120_000);
      await waitFor('the agent sending', async () => (await spool.count()) < produced, 120_000);
      const t0 = Date.now();
      await b.restart();
      const downMs = Date.now() - t0;
      await waitFor('the agent back', () => /broker connection back/.test(agent.err()), 120_000);
      await sleep(1500);
      producing = false;
      await producer;
      await waitFor('the spool to drain', async () => (await spool.count()) === 0, 120_000);
      console.log(`stompclt ${name}: restart took ${downMs} ms, ${produced} messages produced, spool peaked at ${maxSpool}`);
    } finally {
      producing = false;
      clearInterval(watcher);
      agent.child.kill('SIGTERM');
    }
    const r = await agent.done;
    expectOk(r);
    expect(r.err).toMatch(/broker connection lost: reconnecting/);
    expect(r.err).toMatch(/broker connection back/);
    expect(maxSpool).toBeGreaterThan(20);
    const { messages } = await drain(b, d, ['--timeout-inactivity', '5']);
    const seqs = new Set(messages.map((m) => Number(m.getHeader('seq'))));
    const missing = Array.from({ length: produced }, (_, i) => i).filter((i) => !seqs.has(i));
    console.log(
      `stompclt ${name}: received ${messages.length} (${messages.length - seqs.size} duplicates), missing ${missing.length}`,
    );
    expect(missing).toEqual([]);
    expect(seqs.size).toBe(produced);
  });
});

test('stompclt - RabbitMQ: a wrong password is a clear error, retried, then exit 1 with the spool intact', async () => {
  const spoolIn = dir('in');
  await fillSamples(spoolIn, 5, dest(rabbit, 'badpass'));
  const r = await run([
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    uri(rabbit),
    '--outgoing-broker-auth',
    `plain name=${rabbit.user} pass=wrong-secret`,
    '--outgoing-broker-reconnect',
    'max-attempts=2 initial-delay=0.1',
  ]);
  expect(r.status).toBe(1);
  const failures = r.err.split('\n').filter((l) => /cannot connect to the broker/.test(l));
  expect(failures.length).toBe(3);
  expect(failures[0]).toMatch(/access refused|login|authenticat/i);
  expect(r.err).toMatch(/fatal: transfer failed .*cannot connect to tcp:\/\/127\.0\.0\.1:\d+ \(3 attempts\)/);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.err).not.toMatch(/wrong-secret/);
  expect(await new DQS(spoolIn).count()).toBe(5);
  expect(locks(spoolIn)).toEqual([]);
});

test("stompclt - ActiveMQ: a selector subscription (selector=color='blue') takes only the matching messages", async () => {
  const d = dest(amq, 'selector');
  const spoolIn = dir('in');
  const q = new DQS(spoolIn);
  for (let i = 0; i < 40; i++) {
    await q.addMessage(new Message({ header: { destination: d, seq: String(i), color: i % 2 ? 'red' : 'blue' }, body: `m${i}` }));
  }
  expectOk(await run(['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', uri(amq), '--reliable', '--remove']));
  const out = dir('blue');
  expectOk(
    await run([
      '--incoming-broker-uri',
      uri(amq),
      '--subscribe',
      `destination=${d} selector=color='blue'`,
      '--outgoing-queue',
      `path=${out}`,
      '--reliable',
      '--timeout-inactivity',
      '3',
    ]),
  );
  const blue = await readAll(out, 'DQS');
  expect(blue.map((m) => Number(m.getHeader('seq'))).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
  // The red ones are still on the broker.
  const red = (await drain(amq, d, ['--timeout-inactivity', '3'])).messages;
  expect(red.map((m) => m.getHeader('color'))).toEqual(Array(20).fill('red'));
});

test('stompclt - RabbitMQ: heart-beats go on while the callback computes for 6 s: no reconnection, no duplicate', async () => {
  const from = dest(rabbit, 'busy-a');
  const to = dest(rabbit, 'busy-b');
  const spoolIn = dir('in');
  const N = 60;
  const sent = await fillSamples(spoolIn, N, from);
  expectOk(await run(['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', uri(rabbit), '--reliable', '--remove']));
  // A synchronous busy loop: in the agent's own thread it would stop every timer, heart-beats included, for 6 s
  // (6 times the 1 s asked for both ways), and both the broker and the agent would call the connections dead.
  const code = `if (hdr.seq === '7') { const t = Date.now(); while (Date.now() - t < 6000); }
    for (const k of ['message-id', 'subscription', 'ack', 'redelivered']) delete hdr[k];
    hdr.destination = '${to}';`;
  const t0 = Date.now();
  const r = await run([
    '--incoming-broker-uri',
    uri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `destination=${from}`,
    '--outgoing-broker-uri',
    uri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--reliable',
    '--count',
    `${N}`,
    '--heart-beat',
    '--timeout-client',
    '1',
    '--timeout-server',
    '1',
    '--callback-code',
    code,
  ]);
  expectOk(r);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(6000);
  expect(r.err).not.toMatch(/connection lost|reconnecting|connection back|cannot connect/);
  expect(r.err.match(/connected to the broker/g)).toHaveLength(2);
  const { messages } = await drain(rabbit, to, ['--count', `${N}`, '--timeout-inactivity', '10']);
  expect(messages.map((m) => m.getHeader('redelivered'))).not.toContain('true');
  expectSame(
    messages,
    sent.map((m) => m.with({ header: { ...m.header, destination: to } })),
  );
  // Nothing left, nothing twice.
  expect((await drain(rabbit, to, ['--timeout-inactivity', '2'])).messages).toEqual([]);
  expect((await drain(rabbit, from, ['--timeout-inactivity', '2'])).messages).toEqual([]);
});

test('stompclt - RabbitMQ -> a full spool: the transfer waits for room (unacked at the broker), then every message arrives once', async () => {
  const N = 300;
  const d = dest(rabbit, 'fulldisk');
  const spoolIn = dir('in');
  const sent = await fillSamples(spoolIn, N, d);
  expectOk(
    await run([
      '--incoming-queue',
      `path=${spoolIn}`,
      '--outgoing-broker-uri',
      uri(rabbit),
      '--outgoing-broker-auth',
      plain(rabbit),
      '--remove',
    ]),
  );
  const mnt = dir('mnt');
  fs.mkdirSync(mnt);
  // The outgoing spool on a tmpfs with room for a few elements: stompclt waits, the broker keeps the rest unacked.
  const { result, stderr } = await inNamespace([
    CLI,
    'out',
    '',
    '',
    mnt,
    '4m',
    String(40 * 1024),
    '--incoming-broker-uri',
    uri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `destination=${d}`,
    '--reliable',
    '--count',
    String(N),
  ]);
  expect(result.driverError).toBeUndefined();
  const r = result as { status: number; err: string; whileFull: { running: boolean }; out: DriverMessage[] };
  expect({ status: r.status, stderr }).toEqual({ status: 0, stderr: '' });
  expect(r.whileFull.running).toBe(true);
  expect(r.err.match(/file system full/g)).toHaveLength(1);
  expect(r.err).toMatch(/outgoing queue: space again, writing/);
  const got = r.out.map(
    (m) => new Message({ header: m.header, body: Buffer.from(m.body, 'base64'), text: m.header.kind === 'text' }),
  );
  expectSame(got, sent);
  // Nothing left at the broker, nothing twice.
  expect((await drain(rabbit, d, ['--timeout-inactivity', '2'])).messages).toEqual([]);
});

/** stompclt from a spool to ActiveMQ with a dead-letter spool, quick to reconnect. */
function sendToActiveMQ(spoolIn: string, dead: string) {
  return run([
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    uri(amq),
    '--outgoing-broker-auth',
    plain(amq),
    '--outgoing-broker-reconnect',
    'initial-delay=0.05',
    '--dead-letter-queue',
    `path=${dead}`,
    '--reliable',
    '--remove',
    '-s',
  ]);
}

test('stompclt - ActiveMQ: a SEND the broker refuses (ERROR) is dead-lettered with the reason; the transfer goes on', async () => {
  const d = dest(amq, 'refused');
  const BAD = '/remote-temp-queue/ID:msgbricks-none-1:1:1';
  const spoolIn = dir('in');
  const dead = dir('dead');
  const q = new DQS(spoolIn);
  for (let i = 0; i < 30; i++) {
    // A temporary queue that does not exist: ActiveMQ answers the SEND with an ERROR for its receipt.
    const destination = i === 10 ? BAD : d;
    await q.addMessage(new Message({ header: { destination, persistent: 'true', seq: String(i) }, body: `m${i}` }));
  }
  const r = await sendToActiveMQ(spoolIn, dead);
  expectOk(r);
  expect(r.out).toMatch(/^sent: 29, dropped: 0, filtered: 0, dead-lettered: 1, released: 0/m);
  expect(r.err).toMatch(/message moved to the dead-letter queue/);
  const deadLetters = await readAll(dead, 'DQS');
  expect(deadLetters.map((m) => [m.getHeader('seq'), m.getHeader('destination'), m.body.toString()])).toEqual([
    ['10', BAD, 'm10'],
  ]);
  const reason = deadLetters[0]?.getHeader('x-msgbricks-dead-letter-reason') ?? '';
  expect(reason).toMatch(
    /^refused: broker refused SEND to \/remote-temp-queue\/ID:msgbricks-none-1:1:1: .*DestinationDoesNotExistException/,
  );
  // The broker's Java stack trace is cut.
  expect(reason.length).toBeLessThan(600);
  expect(await new DQS(spoolIn).count()).toBe(0);
  expect(locks(spoolIn)).toEqual([]);
  // The others all arrived (at least once: the ERROR dropped the session, unreceipted SENDs went again).
  const { messages } = await drain(amq, d, ['--timeout-inactivity', '3']);
  const seqs = new Set(messages.map((m) => Number(m.getHeader('seq'))));
  expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 10));
});

test('stompclt - ActiveMQ: a SEND that drops the connection without an ERROR (bad expires) is dead-lettered; the transfer goes on', async () => {
  const d = dest(amq, 'dropped');
  const spoolIn = dir('in');
  const dead = dir('dead');
  const q = new DQS(spoolIn);
  for (let i = 0; i < 30; i++) {
    // ActiveMQ cannot parse this expires and closes the connection, with no ERROR frame to say which SEND it was.
    const bad: Record<string, string> = i === 7 ? { expires: 'abc' } : {};
    await q.addMessage(new Message({ header: { destination: d, persistent: 'true', seq: String(i), ...bad }, body: `m${i}` }));
  }
  const r = await sendToActiveMQ(spoolIn, dead);
  expectOk(r);
  expect(r.out).toMatch(/^sent: 29, dropped: 0, filtered: 0, dead-lettered: 1, released: 0/m);
  const deadLetters = await readAll(dead, 'DQS');
  expect(deadLetters.map((m) => [m.getHeader('seq'), m.getHeader('expires'), m.body.toString()])).toEqual([['7', 'abc', 'm7']]);
  expect(deadLetters[0]?.getHeader('x-msgbricks-dead-letter-reason') ?? '').toMatch(
    /^refused: the connection dropped 3 times while this message to \S+ was the only one in flight/,
  );
  expect(await new DQS(spoolIn).count()).toBe(0);
  expect(locks(spoolIn)).toEqual([]);
  const { messages } = await drain(amq, d, ['--timeout-inactivity', '3']);
  const seqs = new Set(messages.map((m) => Number(m.getHeader('seq'))));
  expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 7));
});

test('stompclt - ActiveMQ: --unsubscribe ends a durable subscription (client-id + activemq.subscriptionName)', async () => {
  const topic = `/topic/msgbricks.stompclt.durable.${process.pid}.${unique++}`;
  const clientId = `msgbricks-${process.pid}-${unique++}`;
  const receive = async (extra: string[]) => {
    const out = dir('durable');
    const r = await run([
      '--incoming-broker-uri',
      uri(amq),
      '--incoming-broker-auth',
      plain(amq),
      '--incoming-broker-connect',
      `client-id=${clientId}`,
      '--subscribe',
      `destination=${topic} activemq.subscriptionName=durable-sub`,
      '--outgoing-queue',
      `path=${out}`,
      '--reliable',
      '--timeout-inactivity',
      '2',
      ...extra,
    ]);
    expectOk(r);
    // A refused UNSUBSCRIBE would only be logged.
    expect(r.err).not.toMatch(/error|refused/);
    return (await readAll(out, 'DQS')).map((m) => m.body.toString()).sort();
  };
  const publish = async (what: string) => {
    const spoolIn = dir('pub');
    const q = new DQS(spoolIn);
    for (let i = 0; i < 3; i++)
      await q.addMessage(new Message({ header: { destination: topic, persistent: 'true' }, body: `${what}-${i}` }));
    expectOk(await run(['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', uri(amq), '--reliable', '--remove']));
  };
  // The subscription is created, then outlives its consumer: what is published meanwhile waits for it.
  expect(await receive([])).toEqual([]);
  await publish('kept');
  expect(await receive([])).toEqual(['kept-0', 'kept-1', 'kept-2']);
  // This run ends it: nothing waits for it any more.
  expect(await receive(['--unsubscribe', 'activemq.subscriptionName=durable-sub'])).toEqual([]);
  await publish('lost');
  expect(await receive(['--unsubscribe', 'activemq.subscriptionName=durable-sub'])).toEqual([]);
});
