/**
 * amqpclt killed with SIGKILL at random moments, in both directions, against a private RabbitMQ's AMQP 1.0 plugin
 * (@msgbricks/test-support): the at-least-once model end to end. Sending: every spooled message reaches the broker, each
 * kill repeating at most the window in flight. Receiving: every message the broker held reaches the spool, none is
 * accepted before it is on disk (a kill between the write and the accept only repeats it).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import {
  amqpUri,
  type Broker,
  brokers,
  checkBuilt,
  expectOk,
  locks,
  plain,
  readAll,
  run,
  sleep,
  start,
  tempDir,
  waitFor,
} from './helpers';

jest.setTimeout(240_000);

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

/** Starts the agent, lets it work for a random moment after "transfer started", then SIGKILLs it. */
async function killAtRandom(args: string[], k: number): Promise<void> {
  const agent = start(args, tmp);
  let err = '';
  agent.child.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  let exited = false;
  void agent.done.then(() => {
    exited = true;
  });
  await waitFor(`kill ${k + 1}: "transfer started"`, () => exited || /transfer started/.test(err), 30_000);
  await sleep(50 + Math.floor(Math.random() * 350));
  agent.child.kill('SIGKILL');
  const r = await agent.done;
  // It may have finished before the kill landed: then it must have done so cleanly.
  if (r.status !== null) expectOk(r);
}

function tally(messages: Message[], n: number) {
  const seen = new Map<number, number>();
  for (const m of messages) {
    const seq = Number(m.getHeader('seq'));
    expect(m.body.toString()).toBe(`message ${seq}`);
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  return { seen, missing, duplicates: messages.length - seen.size };
}

test('amqpclt - SIGKILL 10 times in a queue -> broker transfer, then 5 times in the broker -> queue drain: nothing lost', async () => {
  const N = 5000;
  const W = 50;
  const KILLS = 10;
  const address = `/queue/msgbricks.amqpclt.kill.${process.pid}`;
  const spoolIn = join(tmp, 'in');
  const spool = new DQS(spoolIn);
  for (let i = 0; i < N; i += 500) {
    const batch = [];
    for (let j = i; j < i + 500; j++) {
      batch.push(new Message({ header: { destination: address, seq: String(j) }, body: `message ${j}` }).serialize());
    }
    await spool.addMany(batch);
  }
  const auth = plain(rabbit);
  const sendArgs = ['--incoming-queue', `path=${spoolIn}`, '--outgoing-broker-uri', amqpUri(rabbit)];
  sendArgs.push('--outgoing-broker-auth', auth, '--reliable', '--remove', '--window', String(W));
  const left: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    await killAtRandom(sendArgs, k);
    left.push(await spool.count());
  }
  expectOk(await run(sendArgs, tmp, { ms: 60_000 }));
  expect(await spool.count()).toBe(0);
  expect(locks(spoolIn)).toEqual([]);
  expect(fs.existsSync(`${spoolIn}.amqpclt.journal`)).toBe(false);

  // Drain with kills too: prefetch 100, so each kill can repeat at most what was written but not yet accepted.
  const out = join(tmp, 'out');
  const recvArgs = ['--incoming-broker-uri', amqpUri(rabbit), '--incoming-broker-auth', auth];
  recvArgs.push('--subscribe', `destination=${address}`, '--outgoing-queue', `path=${out}`, '--reliable');
  recvArgs.push('--prefetch', '100', '--window', '100');
  const drained: number[] = [];
  for (let k = 0; k < 5; k++) {
    await killAtRandom(recvArgs, k);
    drained.push(fs.existsSync(out) ? await new DQS(out).count() : 0);
  }
  expectOk(await run([...recvArgs, '--timeout-inactivity', '5'], tmp, { ms: 120_000 }));
  const messages = await readAll(out, 'DQS');
  const { seen, missing, duplicates } = tally(messages, N);
  console.log(
    `amqpclt kill: ${N} messages, ${KILLS} SIGKILLs sending (spool left after each: ${left.join(' ')}), ` +
      `5 SIGKILLs receiving (spooled after each: ${drained.join(' ')}); ${messages.length} received, ` +
      `${duplicates} duplicates (bound ${W * KILLS + 100 * 5}), missing ${missing.length}`,
  );
  expect(missing).toEqual([]);
  expect(seen.size).toBe(N);
  expect(duplicates).toBeLessThanOrEqual(W * KILLS + 100 * 5);
});
