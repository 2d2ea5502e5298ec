/**
 * stompclt killed with SIGKILL again and again during a queue -> broker transfer, against a private RabbitMQ
 * (@msgbricks/test-support, docs/brokers.md): the at-least-once model of docs/architecture.md end to end. Every message
 * must reach the broker, and each kill may repeat at most the window of messages in flight.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import type { Broker } from '@msgbricks/test-support';

import * as brokers from '@msgbricks/test-support';
import { checkBuilt, locks, type Result, readAll, start, tempDir, waitFor } from './helpers';

jest.setTimeout(180_000);

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

function expectOk(r: Result): void {
  if (r.status !== 0) throw new Error(`stompclt exited ${r.status}:\n${r.err}`);
}

test('stompclt - SIGKILL 10 times at random moments of a queue -> broker transfer (RabbitMQ): every message arrives, duplicates within the window per kill', async () => {
  const N = 5000;
  const W = 50;
  const KILLS = 10;
  const uri = `tcp://${rabbit.host}:${rabbit.ports.stomp}`;
  const auth = `plain name=${rabbit.user} pass=${rabbit.password}`;
  const destination = `/queue/msgbricks.stompclt.kill.${process.pid}`;
  const spoolIn = join(tmp, 'in');
  const spool = new DQS(spoolIn);
  for (let i = 0; i < N; i++) {
    await spool.addMessage(new Message({ header: { destination, persistent: 'true', seq: String(i) }, body: `message ${i}` }));
  }
  const args = [
    '--incoming-queue',
    `path=${spoolIn}`,
    '--outgoing-broker-uri',
    uri,
    '--outgoing-broker-auth',
    auth,
    '--reliable',
    '--remove',
    '--window',
    String(W),
  ];
  const t0 = Date.now();
  const left: number[] = [];
  for (let k = 0; k < KILLS; k++) {
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
    // It may have finished before the kill landed (a fast transfer): then it must have done so cleanly.
    if (r.status !== null) expectOk(r);
    left.push(await spool.count());
  }
  const final = start(args, tmp);
  const timer = setTimeout(() => final.child.kill('SIGKILL'), 60_000);
  const r = await final.done;
  clearTimeout(timer);
  expectOk(r);
  const sendMs = Date.now() - t0;
  expect(await spool.count()).toBe(0);
  expect(locks(spoolIn)).toEqual([]);
  expect(fs.existsSync(`${spoolIn}.stompclt.journal`)).toBe(false);

  // Drain the broker queue to disk (reliable broker -> queue), until it has been quiet for 5 s.
  const out = join(tmp, 'out');
  const drain = start(
    [
      '--incoming-broker-uri',
      uri,
      '--incoming-broker-auth',
      auth,
      '--subscribe',
      `destination=${destination}`,
      '--outgoing-queue',
      `path=${out}`,
      '--reliable',
      '--timeout-inactivity',
      '5',
    ],
    tmp,
  );
  const drainTimer = setTimeout(() => drain.child.kill('SIGKILL'), 60_000);
  const d = await drain.done;
  clearTimeout(drainTimer);
  expectOk(d);
  const messages = await readAll(out, 'DQS');
  const seen = new Map<number, number>();
  for (const m of messages) {
    const seq = Number(m.getHeader('seq'));
    expect(m.body.toString()).toBe(`message ${seq}`);
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
  }
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !seen.has(i));
  const duplicates = messages.length - seen.size;
  console.log(
    `stompclt kill: ${N} messages, ${KILLS} SIGKILLs (spool left after each: ${left.join(' ')}), transfer ${sendMs} ms, ` +
      `${messages.length} received, ${duplicates} duplicates (bound ${W * KILLS}), missing ${missing.length}`,
  );
  expect(missing).toEqual([]);
  expect(seen.size).toBe(N);
  expect(duplicates).toBeLessThanOrEqual(W * KILLS);
});
