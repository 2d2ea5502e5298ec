/**
 * stompclt --filter against real brokers. RabbitMQ has no selectors: the agent filters, on either side of the broker.
 * ActiveMQ filters itself with --filter-on-broker: the same messages arrive whichever side filters, and what the
 * broker kept back is still there.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import type { Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import { checkBuilt, type Result, readAll, runOk, tempDir } from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
let amq: Broker;
let tmp: string;
let unique = 0;

beforeAll(async () => {
  checkBuilt();
  [rabbit, amq] = await Promise.all([brokers.startRabbitMQ(), brokers.startActiveMQ()]);
  tmp = tempDir();
});

afterAll(async () => {
  await Promise.all([rabbit?.stop(), amq?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (args: string[]): Promise<Result> => runOk(args, tmp, 180_000);

const uri = (b: Broker) => `tcp://${b.host}:${b.ports.stomp}`;
const plain = (b: Broker) => `plain name=${b.user} pass=${b.password}`;
const dir = (what: string) => join(tmp, `${what}-${unique++}`);
const dest = (b: Broker, what: string) => `/queue/msgbricks.filter.${b.kind}.${what}.${process.pid}.${unique++}`;

// prio as senders write it: ActiveMQ over STOMP reads '05' and '+5' as 5, but not ' 4' or '7.0' against an integer.
const PRIOS = ['5', '05', ' 4', '7.0', 'abc', '2', '+5', '4'];
const N = 64;

function header(i: number, destination: string): Record<string, string> {
  const h: Record<string, string> = { destination, seq: String(i), prio: PRIOS[i % PRIOS.length] as string };
  if (i % 3 !== 0) h.state = 'production';
  else if (i % 6 === 0) h.state = 'devel';
  if (i % 5 !== 4) h.hostgroup = i % 2 === 0 ? 'castor/disk' : 'eos/fst';
  if (i % 7 === 0) h.priority = String(i % 10);
  return h;
}

async function fill(path: string, destination: string): Promise<void> {
  const q = new DQS(path);
  for (let i = 0; i < N; i++) await q.addMessage(new Message({ header: header(i, destination), body: `m${i}` }));
}

const seqs = (messages: Message[]) => messages.map((m) => Number(m.header.seq)).sort((a, b) => a - b);
const statistics = (r: Result) => /^sent: (\d+), dropped: (\d+), filtered: (\d+), /m.exec(r.out)?.slice(1).map(Number);

/** spool -> broker destination, every message. */
async function publish(b: Broker, destination: string): Promise<void> {
  const spool = dir('in');
  await fill(spool, destination);
  await run([
    '--incoming-queue',
    `path=${spool}`,
    '--outgoing-broker-uri',
    uri(b),
    '--outgoing-broker-auth',
    plain(b),
    '--remove',
  ]);
}

/** broker destination -> new spool until nothing comes for a while; returns the spool's messages and the run. */
async function consume(b: Broker, destination: string, extra: string[] = []): Promise<{ got: Message[]; r: Result }> {
  const spool = dir('out');
  const r = await run([
    '--incoming-broker-uri',
    uri(b),
    '--incoming-broker-auth',
    plain(b),
    '--subscribe',
    `destination=${destination}`,
    '--reliable',
    '--outgoing-queue',
    `path=${spool}`,
    // Generous: on a loaded machine the first delivery may take seconds; ending early would fail the test, not pass it.
    '--timeout-inactivity',
    '5',
    '-s',
    ...extra,
  ]);
  return { got: await readAll(spool, 'DQS'), r };
}

test('stompclt filter - RabbitMQ (no selectors): filtered before the broker and after it, the right messages arrive, nothing lost', async () => {
  // Plain strings only: what a reader of the selector expects, and what any implementation agrees on.
  const selector = "state = 'production' AND hostgroup LIKE 'castor/%'";
  const expected = [...Array(N).keys()].filter((i) => {
    const h = header(i, '');
    return h.state === 'production' && h.hostgroup?.startsWith('castor/') === true;
  });
  expect(expected.length).toBeGreaterThan(5);

  // Before the broker: spool -> stompclt --filter -> RabbitMQ.
  const before = dest(rabbit, 'before');
  const spool = dir('in');
  await fill(spool, before);
  const sent = await run([
    '--incoming-queue',
    `path=${spool}`,
    '--outgoing-broker-uri',
    uri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--remove',
    '--filter',
    selector,
    '-s',
  ]);
  expect(statistics(sent)).toEqual([expected.length, 0, N - expected.length]);
  expect(await new DQS(spool).count()).toBe(0);
  expect(seqs((await consume(rabbit, before)).got)).toEqual(expected);

  // After the broker: RabbitMQ -> stompclt --filter -> spool; the rest is consumed (acked), not left on the queue.
  const after = dest(rabbit, 'after');
  await publish(rabbit, after);
  const { got, r } = await consume(rabbit, after, ['--filter', selector]);
  expect(seqs(got)).toEqual(expected);
  expect(statistics(r)).toEqual([expected.length, 0, N - expected.length]);
  expect((await consume(rabbit, after)).got).toEqual([]);
});

test('stompclt filter - ActiveMQ: --filter-on-broker and client-side --filter deliver the same messages; what the broker kept back is still there', async () => {
  // JMSPriority: the broker reads the STOMP priority header (4 without one), the agent the same header on the delivered
  // message; it selects 0, 21 and 42, which nothing else does.
  const selector = "state = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%') OR JMSPriority < 3";
  const onBroker = dest(amq, 'broker');
  const onClient = dest(amq, 'client');
  await publish(amq, onBroker);
  await publish(amq, onClient);

  const broker = await consume(amq, onBroker, ['--filter', selector, '--filter-on-broker']);
  const client = await consume(amq, onClient, ['--filter', selector]);
  expect(broker.got.length).toBeGreaterThan(5);
  expect(broker.got.length).toBeLessThan(N);
  expect(seqs(client.got)).toEqual(seqs(broker.got));
  // The broker filtered: the agent's own check let everything through; the client-side run consumed the rest.
  expect(statistics(broker.r)).toEqual([broker.got.length, 0, 0]);
  expect(statistics(client.r)).toEqual([client.got.length, 0, N - client.got.length]);
  // Nothing lost: what ActiveMQ kept back is still on its queue; the client-side run left nothing.
  const rest = await consume(amq, onBroker);
  expect([...seqs(broker.got), ...seqs(rest.got)].sort((a, b) => a - b)).toEqual([...Array(N).keys()]);
  expect((await consume(amq, onClient)).got).toEqual([]);
});
