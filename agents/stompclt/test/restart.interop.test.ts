/**
 * The broker restarted twice while stompclt moves messages both ways through it, against a private RabbitMQ
 * (@msgbricks/test-support, docs/brokers.md): a producer spools, agent A sends the spool to the broker (queue -> broker,
 * --loop) and agent B drains the broker queue to another spool (broker -> queue), all at once. Both agents must
 * reconnect by themselves (no restart by hand), lose nothing, and stop cleanly (exit 0) at the end.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import type { Broker } from '@msgbricks/test-support';

import * as brokers from '@msgbricks/test-support';
import { checkBuilt, type Result, readAll, restartTwiceDuringTransfer, start, tempDir, waitFor } from './helpers';

// Broker restarts take 12-16 s on a loaded machine, and every wait below is for an event, with its own limit.
jest.setTimeout(600_000);

let rabbit: Broker;
let tmp: string;

beforeAll(async () => {
  checkBuilt();
  rabbit = await brokers.startRabbitMQ();
  tmp = tempDir();
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectOk(name: string, r: Result): void {
  if (r.status !== 0) throw new Error(`stompclt (${name}) exited ${r.status}:\n${r.err}`);
}

const times = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

test('stompclt - the broker restarted twice during a transfer, in each direction (RabbitMQ)', async () => {
  const uri = `tcp://${rabbit.host}:${rabbit.ports.stomp}`;
  const auth = `plain name=${rabbit.user} pass=${rabbit.password}`;
  const destination = `/queue/msgbricks.stompclt.restart.${process.pid}`;
  const reconnect = ['initial-delay=0.1 max-delay=1'];
  const spoolIn = join(tmp, 'in');
  const spoolOut = join(tmp, 'out');
  fs.mkdirSync(spoolIn);
  const sender = start(
    [
      '--incoming-queue',
      `path=${spoolIn}`,
      '--outgoing-broker-uri',
      uri,
      '--outgoing-broker-auth',
      auth,
      '--outgoing-broker-reconnect',
      ...reconnect,
      '--reliable',
      '--remove',
      '--loop',
    ],
    tmp,
  );
  const receiver = start(
    [
      '--incoming-broker-uri',
      uri,
      '--incoming-broker-auth',
      auth,
      '--incoming-broker-reconnect',
      ...reconnect,
      '--subscribe',
      `destination=${destination}`,
      '--outgoing-queue',
      `path=${spoolOut}`,
      '--reliable',
      '--prefetch',
      '50',
    ],
    tmp,
  );
  const spool = new DQS(spoolIn);
  let producing = true;
  let produced = 0;
  const producer = (async () => {
    while (producing) {
      for (let i = 0; i < 10; i++, produced++) {
        const header = { destination, persistent: 'true', seq: String(produced) };
        await spool.addMessage(new Message({ header, body: `message ${produced}` }));
      }
      await sleep(30);
    }
  })();
  let restarts: number[] = [];
  let received: Message[] = [];
  let seqs = new Set<number>();
  try {
    restarts = await restartTwiceDuringTransfer(rabbit, sender, receiver, spoolOut);
    producing = false;
    await producer;
    await waitFor('the sender to empty its spool', async () => (await spool.count()) === 0, 120_000);
    await waitFor(
      'every message in the receiver spool',
      async () => {
        if (fs.existsSync(spoolOut) && (await new DQS(spoolOut).count()) < produced) return false;
        received = await readAll(spoolOut, 'DQS');
        seqs = new Set(received.map((m) => Number(m.getHeader('seq'))));
        return seqs.size >= produced;
      },
      120_000,
    );
  } finally {
    producing = false;
    sender.child.kill('SIGTERM');
    receiver.child.kill('SIGTERM');
  }
  const [s, r] = await Promise.all([sender.done, receiver.done]);
  console.log(
    `stompclt restart: broker restarts took ${restarts.join(' and ')} ms, ${produced} produced, ${received.length} received ` +
      `(${received.length - seqs.size} duplicates); reconnections: sender ${times(s.err, /broker connection back/)}, ` +
      `receiver ${times(r.err, /broker connection back/)}`,
  );
  expectOk('queue -> broker', s);
  expectOk('broker -> queue', r);
  for (const log of [s.err, r.err]) {
    expect(times(log, /broker connection lost: reconnecting/)).toBeGreaterThanOrEqual(2);
    expect(times(log, /broker connection back/)).toBeGreaterThanOrEqual(2);
  }
  const missing = Array.from({ length: produced }, (_, i) => i).filter((i) => !seqs.has(i));
  expect(missing).toEqual([]);
  for (const m of received) expect(m.body.toString()).toBe(`message ${m.getHeader('seq')}`);
  expect(await spool.count()).toBe(0);
});
