/**
 * amqpclt against a real broker: a private RabbitMQ 3.10 with its AMQP 1.0 plugin (@msgbricks/test-support,
 * docs/brokers.md), with TLS, started once. Every transfer spawns the built command, as users run it; the
 * cross-protocol tests run stompclt too, on the same broker's STOMP port.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { CLI as STOMPCLT } from '../../stompclt/test/helpers';
import {
  amqpUri,
  type Broker,
  brokers,
  checkBuilt,
  expectOk,
  expectSame,
  fillSamples,
  locks,
  plain,
  readAll,
  run,
  stompUri,
  tempDir,
} from './helpers';

jest.setTimeout(300_000);

let rabbit: Broker;
let tmp: string;
let unique = 0;

beforeAll(async () => {
  checkBuilt();
  rabbit = await brokers.startRabbitMQ({ tls: true });
  tmp = tempDir();
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const dir = (what: string) => join(tmp, `${what}-${unique++}`);
const queue = (what: string) => `/queue/msgbricks.amqpclt.${what}.${process.pid}.${unique++}`;
/** The headers a message keeps across RabbitMQ's AMQP 1.0 plugin (docs/amqp-mapping.md). */
const KEPT = ['seq', 'kind', 'x-escaped', 'x-unicode', 'persistent'];

const exec = (args: string[], cli?: string) => run(args, tmp, { cli });

/** Drains an address into a new spool with amqpclt (broker -> queue); returns its messages. */
async function drain(address: string, args: string[] = [], type: 'DQS' | 'DQN' = 'DQS'): Promise<Message[]> {
  const out = dir('drained');
  const r = await exec([
    '--incoming-broker-uri',
    amqpUri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `destination=${address}`,
    '--outgoing-queue',
    `path=${out} type=${type}`,
    '--reliable',
    ...args,
  ]);
  expectOk(r);
  return readAll(out, type);
}

async function send(spool: string, args: string[] = []): Promise<void> {
  const r = await exec([
    '--incoming-queue',
    `path=${spool}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--reliable',
    '--remove',
    ...args,
  ]);
  expectOk(r);
  expect(await new DQS(spool).count()).toBe(0);
  expect(locks(spool)).toEqual([]);
}

test('amqpclt - queue -> broker -> queue of 10,000 text and binary messages: identical bodies and headers', async () => {
  const address = queue('roundtrip');
  const spoolIn = dir('in');
  const N = 10_000;
  const sent = await fillSamples(spoolIn, N, address);
  const t0 = Date.now();
  await send(spoolIn, ['--statistics', '--window', '500']);
  const sendMs = Date.now() - t0;
  const t1 = Date.now();
  const got = await drain(address, ['--count', `${N}`, '--timeout-inactivity', '15']);
  console.log(`amqpclt: ${N} messages queue -> broker in ${sendMs} ms, broker -> queue in ${Date.now() - t1} ms`);
  expect(got.length).toBe(N);
  expectSame(got, sent, KEPT);
  for (const m of got) if (m.text) expect(m.getHeader('content-type')).toMatch(/^text\/plain/);
  // Nothing is left on the broker.
  expect(await drain(address, ['--timeout-inactivity', '2'])).toEqual([]);
});

test('amqpclt - broker -> broker through a callback, and queue -> queue', async () => {
  const from = queue('shovel-a');
  const to = queue('shovel-b');
  const spoolIn = dir('in');
  const N = 300;
  const sent = await fillSamples(spoolIn, N, from);
  await send(spoolIn);
  const r = await exec([
    '--incoming-broker-uri',
    amqpUri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `destination=${from}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--reliable',
    '--count',
    `${N}`,
    '--callback-code',
    `hdr.destination = '${to}'; hdr.shoveled = 'yes';`,
    '--statistics',
  ]);
  expectOk(r);
  expect(r.out).toMatch(new RegExp(`^count: ${N} messages$`, 'm'));
  const got = await drain(to, ['--count', `${N}`, '--timeout-inactivity', '15'], 'DQN');
  expectSame(
    got,
    sent.map((m) => m.with({ header: { ...m.header, shoveled: 'yes' } })),
    [...KEPT, 'shoveled'],
  );
  expect(await drain(from, ['--timeout-inactivity', '2'])).toEqual([]);

  // queue -> queue needs no broker at all.
  const a = dir('qa');
  const b = dir('qb');
  const local = await fillSamples(a, 20, to);
  expectOk(await exec(['--incoming-queue', `path=${a}`, '--outgoing-queue', `path=${b} type=DQN`, '--remove']));
  expectSame(await readAll(b, 'DQN'), local);
});

test('amqpclt - cross-protocol: STOMP in, AMQP out, and AMQP in, STOMP out, bodies intact', async () => {
  const stompQ = queue('x-stomp');
  const amqpQ = queue('x-amqp');
  const spoolIn = dir('in');
  const N = 400;
  const sent = await fillSamples(spoolIn, N, stompQ);
  // spool -> STOMP (stompclt), STOMP -> AMQP (amqpclt), AMQP -> spool (amqpclt)
  expectOk(
    await exec(
      ['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', stompUri(rabbit), '--reliable', '--remove'],
      STOMPCLT,
    ),
    'stompclt',
  );
  const shovel = await exec([
    '--incoming-broker-uri',
    stompUri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `destination=${stompQ}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--reliable',
    '--count',
    `${N}`,
    '--callback-code',
    `hdr.destination = '${amqpQ}';`,
  ]);
  expectOk(shovel);
  const viaAmqp = await drain(amqpQ, ['--count', `${N}`, '--timeout-inactivity', '15']);
  expectSame(viaAmqp, sent, ['seq', 'kind', 'x-unicode']);

  // and back: spool -> AMQP (amqpclt), AMQP -> STOMP (stompclt), STOMP -> spool (stompclt)
  const again = dir('again');
  await new DQS(again).addMany(viaAmqp.map((m) => m.with({ header: { ...m.header, destination: amqpQ } }).serialize()));
  await send(again);
  const back = dir('back');
  const r = await exec(
    [
      '--incoming-broker-uri',
      `amqp://${rabbit.host}:${rabbit.ports.amqp}`,
      '--incoming-broker-auth',
      plain(rabbit),
      '--subscribe',
      `destination=${amqpQ}`,
      '--outgoing-broker-uri',
      stompUri(rabbit),
      '--outgoing-broker-auth',
      plain(rabbit),
      '--callback-code',
      `hdr.destination = '${stompQ}';`,
      '--reliable',
      '--count',
      `${N}`,
    ],
    STOMPCLT,
  );
  expectOk(r, 'stompclt');
  const drained = await exec(
    [
      '--incoming-broker-uri',
      stompUri(rabbit),
      '--subscribe',
      `destination=${stompQ}`,
      '--outgoing-queue',
      `path=${back}`,
      '--reliable',
      '--count',
      `${N}`,
      '--timeout-inactivity',
      '15',
    ],
    STOMPCLT,
  );
  expectOk(drained, 'stompclt');
  const viaStomp = await readAll(back, 'DQS');
  expect(viaStomp.length).toBe(N);
  // Bodies byte for byte; RabbitMQ does not turn AMQP application properties into STOMP headers (ecosystem 4.3).
  expectSame(viaStomp, sent, []);
});

test('amqpclt - Config::General file with an <amqpclt> block, <outgoing-broker> and <auth>', async () => {
  const address = queue('config');
  const spoolIn = dir('in');
  const spoolOut = dir('out');
  const sent = await fillSamples(spoolIn, 50, address);
  const conf = join(tmp, `send-${unique++}.conf`);
  fs.writeFileSync(
    conf,
    `<amqpclt>\n  <incoming-queue>\n    path = ${spoolIn}\n  </incoming-queue>\n  <outgoing-broker>\n    uri = ${amqpUri(rabbit)}/\n` +
      `    module = pika\n    <auth>\n      scheme = plain\n      name = ${rabbit.user}\n      pass = ${rabbit.password}\n    </auth>\n` +
      `  </outgoing-broker>\n  reliable = 1\n  remove = 1\n  loglevel = warning\n</amqpclt>\n`,
  );
  const r = await exec(['--config', conf]);
  expectOk(r);
  expect(r.err).not.toMatch(/info:/);
  expect(await new DQS(spoolIn).count()).toBe(0);
  const got = await exec([
    '--incoming-broker-uri',
    amqpUri(rabbit),
    '--incoming-broker-auth',
    plain(rabbit),
    '--subscribe',
    `queue=${address.replace('/queue/', '')}`,
    '--outgoing-queue',
    `path=${spoolOut} type=DQN`,
    '--count',
    '50',
    '--timeout-inactivity',
    '15',
  ]);
  expectOk(got);
  expectSame(await readAll(spoolOut, 'DQN'), sent, KEPT);
});

test('amqpclt - TLS with a client certificate and SASL EXTERNAL (amqps://)', async () => {
  const tls = rabbit.tls as NonNullable<Broker['tls']>;
  expect(rabbit.ports.amqpSsl).toBeDefined();
  const address = queue('tls');
  const spoolIn = dir('in');
  const spoolOut = dir('out');
  const sent = await fillSamples(spoolIn, 100, address);
  const uri = `amqps://${rabbit.host}:${rabbit.ports.amqpSsl}`;
  const x509 = `x509 cert=${tls.clientCertFile} key=${tls.clientKeyFile} ca_file=${tls.caFile}`;
  expectOk(
    await exec(['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', uri, '--outgoing-broker-auth', x509, '--remove']),
  );
  const r = await exec([
    '--incoming-broker-uri',
    uri,
    '--incoming-broker-auth',
    x509,
    '--subscribe',
    `destination=${address}`,
    '--outgoing-queue',
    `path=${spoolOut}`,
    '--count',
    '100',
    '--timeout-inactivity',
    '15',
  ]);
  expectOk(r);
  expectSame(await readAll(spoolOut, 'DQS'), sent, KEPT);
});

test('amqpclt - a wrong password is a clear error, retried, then exit 1 with the spool intact', async () => {
  const spoolIn = dir('in');
  await fillSamples(spoolIn, 5, queue('badpass'));
  const r = await exec([
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    `plain name=${rabbit.user} pass=wrong-secret`,
    '--outgoing-broker-reconnect',
    'max-attempts=2 initial-delay=0.1',
  ]);
  expect(r.status).toBe(1);
  const failures = r.err.split('\n').filter((l) => /cannot connect to the broker/.test(l));
  expect(failures.length).toBe(3);
  expect(failures[0]).toMatch(/auth|sasl|login|refused/i);
  expect(r.err).toMatch(/fatal: transfer failed/);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.err).not.toMatch(/wrong-secret/);
  expect(await new DQS(spoolIn).count()).toBe(5);
  expect(locks(spoolIn)).toEqual([]);
});

test('amqpclt - a corrupt spool element goes to the dead-letter queue and the transfer goes on', async () => {
  const address = queue('corrupt');
  const spoolIn = dir('in');
  const dead = dir('dead');
  const sent = await fillSamples(spoolIn, 20, address);
  const q = new DQS(spoolIn);
  await q.add('{"header": {"destination": "x"}, "body": 42');
  const r = await exec([
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--remove',
    '--dead-letter-queue',
    `path=${dead}`,
  ]);
  expectOk(r);
  expect(await q.count()).toBe(0);
  const dl = await readAll(dead, 'DQS');
  expect(dl.length).toBe(1);
  expect(dl[0]?.getHeader('x-msgbricks-dead-letter-reason')).toMatch(/^corrupt element/);
  expect(dl[0]?.body.toString()).toBe('{"header": {"destination": "x"}, "body": 42');
  expectSame(await drain(address, ['--count', '20', '--timeout-inactivity', '15']), sent, KEPT);
});

test('amqpclt - a message the broker cannot route is refused into the dead-letter queue', async () => {
  const spoolIn = dir('in');
  const dead = dir('dead');
  const q = new DQS(spoolIn);
  // No exchange of that name: RabbitMQ refuses the link (or the delivery), never accepts the message.
  await q.addMessage(
    new Message({ header: { destination: `/exchange/msgbricks-missing-${unique++}/rk`, seq: '0' }, body: 'lost?' }),
  );
  const ok = queue('after-refusal');
  const after = await fillSamples(spoolIn, 5, ok, 1);
  const r = await exec([
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    amqpUri(rabbit),
    '--outgoing-broker-auth',
    plain(rabbit),
    '--remove',
    '--dead-letter-queue',
    `path=${dead}`,
  ]);
  expectOk(r);
  const dl = await readAll(dead, 'DQS');
  expect(dl.map((m) => m.body.toString())).toEqual(['lost?']);
  expect(dl[0]?.getHeader('x-msgbricks-dead-letter-reason')).toMatch(/exchange|not.found|refused|reject/i);
  expectSame(await drain(ok, ['--count', '5', '--timeout-inactivity', '15']), after, KEPT);
});
