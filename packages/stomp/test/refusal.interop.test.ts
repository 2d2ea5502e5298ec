// Faults against a real RabbitMQ (issue 11): one refused SEND among many gives exactly one dead-lettered message and
// no duplicates; a broker restarted three times during a transfer dead-letters nothing and loses nothing.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEAD_LETTER_REASON, QueueIncoming, QueueOutgoing, runPipeline } from '@msgbricks/agent';
import { DQS, Message } from '@msgbricks/message';
import { type StompConnectionOptions, StompIncoming, StompOutgoing } from '@msgbricks/stomp';
import type { Broker } from '@msgbricks/test-support';
import * as brokers from '@msgbricks/test-support';
import { removeDir, tempDir } from '@msgbricks/test-support';

jest.setTimeout(600_000);

let rabbit: Broker;
let tmp: string;

beforeAll(async () => {
  rabbit = await brokers.startRabbitMQ();
  tmp = tempDir('stomp-refusal-');
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) removeDir(tmp);
});

function conn(extra: Partial<StompConnectionOptions> = {}): StompConnectionOptions {
  return {
    uri: `tcp://${rabbit.host}:${rabbit.ports.stomp}`,
    auth: [`plain name=${rabbit.user} pass=${rabbit.password}`],
    ...extra,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every `seq` delivered on `dest`, duplicates included, until `n` distinct ones came and then 2 s of silence. */
async function consume(dest: string, n: number): Promise<string[]> {
  const inc = new StompIncoming(conn(), { subscribe: [{ destination: dest }], prefetch: 200 });
  await inc.open();
  const seqs: string[] = [];
  const distinct = new Set<string>();
  const until = Date.now() + 180_000;
  let quietSince = Date.now();
  while (Date.now() < until && !(distinct.size >= n && Date.now() - quietSince > 2000)) {
    const d = await inc.next();
    if (d === undefined || d === null) {
      await sleep(5);
      continue;
    }
    quietSince = Date.now();
    const seq = d.message.getHeader('seq') ?? '';
    seqs.push(seq);
    distinct.add(seq);
    await inc.ack(d.id);
  }
  await inc.close();
  return seqs;
}

/** Element files of a dirq simple queue (its raw layout: NNNNNNNN/ directories of elements). */
function elements(path: string): string[] {
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{8}$/.test(e.name))
    .flatMap((e) => readdirSync(join(path, e.name)).filter((f) => /^[0-9a-f]{14}$/.test(f)));
}

test('stomp RabbitMQ - one refused SEND among 1,000: 999 delivered, 1 dead-lettered, 0 duplicates', async () => {
  const dest = `/queue/msgbricks.refusal.${process.pid}`;
  const src = new DQS(join(tmp, 'refusal-in'));
  const dl = new DQS(join(tmp, 'refusal-dl'));
  const N = 1000;
  for (let i = 0; i < N; i++) {
    // The message's own destination header wins over the default: RabbitMQ refuses this one with an ERROR.
    const header: Record<string, string> = { seq: `${i}`, persistent: 'true' };
    if (i === 500) header.destination = '/invalid/x';
    await src.addMessage(new Message({ header, body: `body ${i}` }));
  }
  const events: string[] = [];
  const stats = await runPipeline(
    new QueueIncoming(src, { remove: true }),
    new StompOutgoing(conn({ onEvent: (e) => events.push(e.type) }), { destination: dest }),
    { window: 200, deadLetter: new QueueOutgoing(dl) },
  );
  expect([stats.received, stats.sent, stats.deadLettered, stats.released]).toEqual([N, N - 1, 1, 0]);
  // The session was kept: the refusal did not cost a reconnection (which would send the unreceipted SENDs again).
  expect(events).not.toContain('lost');
  expect(await src.count()).toBe(0);
  expect(elements(join(tmp, 'refusal-dl'))).toHaveLength(1);
  const name = await dl.first();
  expect(await dl.lock(name)).toBe(true);
  const dead = await dl.getMessage(name);
  expect(dead.getHeader('seq')).toBe('500');
  expect(dead.getHeader(DEAD_LETTER_REASON)).toMatch(/^refused: broker refused SEND to \/invalid\/x: Unknown destination/);
  const seqs = await consume(dest, N - 1);
  expect(seqs).toHaveLength(N - 1);
  expect(new Set(seqs).size).toBe(N - 1);
  expect(seqs).not.toContain('500');
});

test('stomp RabbitMQ - broker restarted 3 times during a transfer: nothing dead-lettered, nothing lost', async () => {
  const dest = `/queue/msgbricks.flapping.${process.pid}`;
  const src = new DQS(join(tmp, 'flap-in'));
  const dl = new DQS(join(tmp, 'flap-dl'));
  const N = 6000;
  for (let i = 0; i < N; i++)
    await src.addMessage(new Message({ header: { seq: `${i}`, persistent: 'true' }, body: `body ${i}` }));
  let reconnected = 0;
  let restarts = 0;
  let sentAtLastRestart = -1;
  let stats: Awaited<ReturnType<typeof runPipeline>> | undefined;
  const events: string[] = [];
  const out = new StompOutgoing(
    conn({
      reconnect: { initialDelay: 50, maxDelay: 500 },
      onEvent: (e) => {
        events.push(e.type);
        if (e.type === 'reconnected') reconnected++;
      },
    }),
    { destination: dest },
  );
  const transfer = runPipeline(new QueueIncoming(src, { remove: true }), out, {
    // A small window keeps the transfer going through the restarts, with SENDs in flight at each.
    window: 4,
    deadLetter: new QueueOutgoing(dl),
  }).then((s) => {
    stats = s;
  });
  const flapping = (async () => {
    for (let i = 0; i < 3; i++) {
      // Right after the reconnection: the SENDs lost with the last session are being sent again, one at a time.
      while (reconnected < i) await sleep(10);
      await sleep(i === 0 ? 500 : 100);
      if (stats !== undefined) return;
      sentAtLastRestart = N - (await src.count());
      await rabbit.restart();
      restarts++;
    }
  })();
  await Promise.all([transfer, flapping]);
  expect(restarts).toBe(3);
  expect(sentAtLastRestart).toBeLessThan(N);
  expect(reconnected).toBe(3);
  expect(stats?.deadLettered).toBe(0);
  expect(stats?.sent).toBe(N);
  expect(elements(join(tmp, 'flap-dl'))).toHaveLength(0);
  expect(await src.count()).toBe(0);
  // Nothing lost (persistent messages survive the restarts); duplicates are allowed (at least once).
  const seqs = await consume(dest, N);
  expect(new Set(seqs).size).toBe(N);
});

/**
 * N messages through the pipeline to RabbitMQ, message 500 to a missing exchange (an ERROR that names nothing, and the
 * session ends); returns the pipeline's counts, the dead letter and every seq the consumer got.
 */
async function missingExchangeRun(name: string, probeDestinations: boolean) {
  const dest = `/queue/msgbricks.${name}.${process.pid}`;
  const src = new DQS(join(tmp, `${name}-in`));
  const dl = new DQS(join(tmp, `${name}-dl`));
  for (let i = 0; i < N_MISSING; i++) {
    const header: Record<string, string> = { seq: `${i}`, persistent: 'true' };
    if (i === 500) header.destination = '/exchange/msgbricks-missing';
    await src.addMessage(new Message({ header, body: `body ${i}` }));
  }
  let lost = 0;
  const stats = await runPipeline(
    new QueueIncoming(src, { remove: true }),
    new StompOutgoing(
      conn({
        reconnect: { initialDelay: 50, maxDelay: 500 },
        onEvent: (e) => {
          if (e.type === 'lost') lost++;
        },
      }),
      { destination: dest, probeDestinations },
    ),
    { window: WINDOW, deadLetter: new QueueOutgoing(dl) },
  );
  expect(elements(join(tmp, `${name}-dl`))).toHaveLength(1);
  const name0 = await dl.first();
  expect(await dl.lock(name0)).toBe(true);
  const dead = await dl.getMessage(name0);
  const seqs = await consume(dest, N_MISSING - 1);
  return { stats, dead, seqs, lost, left: await src.count() };
}

const N_MISSING = 1000;
const WINDOW = 200;

test('stomp RabbitMQ - a SEND to a missing exchange (an ERROR that names nothing, the session ends): probed alone, so exactly 999 delivered, 1 dead-lettered, 0 duplicates', async () => {
  const { stats, dead, seqs, lost, left } = await missingExchangeRun('missing', true);
  expect([stats.received, stats.sent, stats.deadLettered, stats.released]).toEqual([N_MISSING, N_MISSING - 1, 1, 0]);
  expect(left).toBe(0);
  expect(dead.getHeader('seq')).toBe('500');
  expect(dead.getHeader(DEAD_LETTER_REASON)).toMatch(
    /^refused: the broker answered 3 times with an ERROR while this message to \/exchange\/msgbricks-missing was the only one in flight/,
  );
  // The first SEND to the exchange went alone: each session it ended had nothing else in flight.
  expect(lost).toBe(3);
  expect(seqs).toHaveLength(N_MISSING - 1);
  expect(new Set(seqs).size).toBe(N_MISSING - 1);
  expect(seqs).not.toContain('500');
});

test('stomp RabbitMQ - without probing, the same refusal takes the SENDs in flight down with the session: sent again (duplicates), nothing lost', async () => {
  const { stats, dead, seqs } = await missingExchangeRun('missing-unprobed', false);
  expect([stats.received, stats.sent, stats.deadLettered, stats.released]).toEqual([N_MISSING, N_MISSING - 1, 1, 0]);
  expect(dead.getHeader('seq')).toBe('500');
  expect(new Set(seqs).size).toBe(N_MISSING - 1);
  // RabbitMQ does not receipt what it took before its channel died: those SENDs went again (at least once), at most
  // the SENDs that were in flight.
  const duplicates = seqs.length - (N_MISSING - 1);
  console.log(`missing exchange without probing: ${duplicates} duplicates of ${N_MISSING - 1} messages (window ${WINDOW})`);
  expect(duplicates).toBeLessThanOrEqual(WINDOW);
});
