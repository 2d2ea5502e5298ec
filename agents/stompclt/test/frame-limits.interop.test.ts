/**
 * Frame limits against real brokers (issue 11, item 2): what RabbitMQ and ActiveMQ accept and deliver (a 4 KiB header,
 * 100 headers) goes queue -> broker -> queue intact with the default limits; a MESSAGE over the limits the receiver is
 * given is dead-lettered whole with the reason and acknowledged: the broker does not deliver it again, and the
 * connection is never broken for it. The brokers' own limits are measured by bench/stomp-limits.js (docs/stompclt.md).
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

const run = (args: string[]): Promise<Result> => runOk(args, tmp, 120_000);

const dir = (what: string) => join(tmp, `${what}-${unique++}`);
const broker = (b: Broker) => [`tcp://${b.host}:${b.ports.stomp}`, `plain name=${b.user} pass=${b.password}`];

const long = 'x'.repeat(4096 - 'x-long:'.length);
const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, `v${i}`]));

/** Sends a message with a 4 KiB header line and one with 100 headers to a new destination; returns it. */
async function sendBoth(b: Broker): Promise<string> {
  const destination = `/queue/msgbricks.limits.${b.kind}.${process.pid}.${unique++}`;
  const spool = dir('in');
  const q = new DQS(spool);
  await q.addMessage(new Message({ header: { destination, persistent: 'true', seq: 'long', 'x-long': long }, body: 'long' }));
  await q.addMessage(new Message({ header: { destination, persistent: 'true', seq: 'many', ...many }, body: 'many' }));
  const [uri, auth] = broker(b);
  await run([
    '--incoming-queue',
    `path=${spool}`,
    '--outgoing-broker-uri',
    uri,
    '--outgoing-broker-auth',
    auth,
    '--reliable',
    '--remove',
  ]);
  expect(await q.count()).toBe(0);
  return destination;
}

/** broker -> queue with `args`; the received messages (and the dead letters, when `--dead-letter-queue` is asked). */
async function receive(b: Broker, destination: string, args: string[], dlq?: string): Promise<{ r: Result; got: Message[] }> {
  const out = dir('out');
  const [uri, auth] = broker(b);
  const r = await run([
    '--incoming-broker-uri',
    uri,
    '--incoming-broker-auth',
    auth,
    '--subscribe',
    `destination=${destination}`,
    '--outgoing-queue',
    `path=${out}`,
    '--reliable',
    ...(dlq === undefined ? [] : ['--dead-letter-queue', `path=${dlq}`]),
    ...args,
  ]);
  return { r, got: await readAll(out, 'DQS') };
}

const bySeq = (ms: Message[]) => [...ms].sort((a, b) => String(a.getHeader('seq')).localeCompare(String(b.getHeader('seq'))));

describe.each([
  ['RabbitMQ', () => rabbit],
  ['ActiveMQ', () => amq],
] as const)('stompclt frame limits with %s', (name, b) => {
  test(`stompclt frame limits - ${name}: a 4 KiB header line and 100 headers, queue -> broker -> queue intact with the defaults`, async () => {
    const destination = await sendBoth(b());
    const { r, got } = await receive(b(), destination, ['--count', '2', '--timeout-inactivity', '30']);
    expect(r.err).not.toMatch(/connection lost/);
    expect(r.err).toMatch(/transfer finished received=2 sent=2 dropped=0 filtered=0 deadLettered=0 released=0 /);
    const [l, m] = bySeq(got) as [Message, Message];
    expect(got).toHaveLength(2);
    expect(l.getHeader('x-long')).toBe(long);
    for (const [k, v] of Object.entries(many)) expect([k, m.getHeader(k)]).toEqual([k, v]);
  });

  test(`stompclt frame limits - ${name}: over --max-header-length and --max-headers, dead-lettered whole with the reason and acked, not delivered again`, async () => {
    const destination = await sendBoth(b());
    const dlq = dir('dlq');
    const { r, got } = await receive(
      b(),
      destination,
      ['--count', '2', '--timeout-inactivity', '30', '--max-header-length', '1024', '--max-headers', '50'],
      dlq,
    );
    expect(got).toEqual([]);
    expect(r.err).not.toMatch(/connection lost/);
    expect(r.err).toMatch(/transfer finished received=2 sent=0 dropped=0 filtered=0 deadLettered=2 released=0 acked=2 /);
    const [l, m] = bySeq(await readAll(dlq, 'DQS')) as [Message, Message];
    expect(l.getHeader('x-long')).toBe(long);
    expect(l.getHeader('x-msgbricks-dead-letter-reason')).toBe(
      'refused: over the frame limits: a header line of 4096 bytes (x-long; more than --max-header-length 1024)',
    );
    for (const [k, v] of Object.entries(many)) expect([k, m.getHeader(k)]).toEqual([k, v]);
    expect(m.getHeader('x-msgbricks-dead-letter-reason')).toMatch(
      /^refused: over the frame limits: 1\d\d headers \(more than --max-headers 50\)$/,
    );
    // Acknowledged: nothing comes again.
    const again = await receive(b(), destination, ['--timeout-inactivity', '3']);
    expect(again.got).toEqual([]);
  });
});
