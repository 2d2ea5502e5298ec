import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import type { Delivery, Incoming } from '../src/core/modules';
import { runPipeline } from '../src/core/pipeline';
import { QueueIncoming, QueueOutgoing } from '../src/core/queues';

// A full prefetch window must never wait on a timer: these tests run with every timer faked and never advanced
// (setImmediate, nextTick and I/O stay real), so a pipeline that needed its idle interval or the group-commit timer to
// go on would stop there, and the test sees it stuck. Nothing here measures time.

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(join(os.tmpdir(), 'agent-nt-'));
});
afterEach(() => {
  jest.useRealTimers();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * A broker subscription as StompIncoming and AmqpIncoming see it: `total` messages, at most `prefetch` delivered and
 * not acked; an ack lets the broker send the next one, which arrives in a later turn (as a socket read does) and is
 * announced through onArrival.
 */
class PrefetchIncoming implements Incoming {
  readonly description = 'prefetch';
  private readonly buffer: Delivery[] = [];
  private delivered = 0;
  private unacked = 0;
  acked = 0;
  /** Ack events and the deliveries they made room for, in order: "ack", "arrive". */
  readonly events: string[] = [];
  private listener: (() => void) | undefined;

  constructor(
    private readonly total: number,
    private readonly prefetch: number,
    private readonly announce = true,
  ) {}

  async open(): Promise<void> {
    this.refill();
  }

  onArrival(listener: () => void): void {
    if (this.announce) this.listener = listener;
  }

  private refill(): void {
    let n = 0;
    while (this.unacked < this.prefetch && this.delivered < this.total) {
      const i = this.delivered++;
      this.unacked++;
      this.buffer.push({ id: `${i}`, message: new Message({ header: { seq: `${i}` }, body: `m${i}` }) });
      n++;
    }
    if (n > 0) {
      this.events.push('arrive');
      this.listener?.();
    }
  }

  async next(): Promise<Delivery | undefined> {
    return this.buffer.shift();
  }

  async ack(): Promise<void> {
    this.acked++;
    this.unacked--;
    this.events.push('ack');
    // The broker's next frames come in a later turn of the event loop, not from a timer.
    setImmediate(() => this.refill());
  }

  async release(): Promise<void> {
    this.unacked--;
  }

  async close(): Promise<void> {}
}

/** Turns the event loop (I/O and setImmediate, no timer) until `done` says so or `turns` are used up. */
async function turnUntil(done: () => boolean, turns = 200_000): Promise<boolean> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((r) => setImmediate(r));
  return done();
}

test('agent pipeline - a full prefetch window is written and acked without any timer (broker -> queue)', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  const incoming = new PrefetchIncoming(1000, 100);
  const spool = new DQS(join(tmp, 'out'), { fsync: true });
  let finished = false;
  const run = runPipeline(incoming, new QueueOutgoing(spool), { count: 1000 }).finally(() => {
    finished = true;
  });
  expect(await turnUntil(() => finished)).toBe(true);
  const stats = await run;
  expect(stats).toMatchObject({ received: 1000, sent: 1000, stoppedBy: 'count' });
  expect(incoming.acked).toBe(1000);
  // The window was full 10 times over, and each time the whole of it was written as one batch and acked before the
  // broker sent anything more: arrive, 100 acks, arrive, 100 acks...
  const expected = Array.from({ length: 10 }, () => ['arrive', ...new Array(100).fill('ack')]).flat();
  expect(incoming.events).toEqual(expected);
  expect(await spool.count()).toBe(1000);
});

test('agent pipeline - an arrival ends the idle wait at once; without onArrival the idle interval is waited for', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  const spool = new DQS(join(tmp, 'out'));
  let finished = false;
  const announced = new PrefetchIncoming(10, 1);
  void runPipeline(announced, new QueueOutgoing(spool), { count: 10, idleInterval: 60_000 }).finally(() => {
    finished = true;
  });
  expect(await turnUntil(() => finished)).toBe(true);
  expect(announced.acked).toBe(10);

  // The same source, silent: the pipeline idles after the first message, and only a timer gets it going again.
  finished = false;
  const silent = new PrefetchIncoming(10, 1, false);
  const run = runPipeline(silent, new QueueOutgoing(new DQS(join(tmp, 'out2'))), { count: 10, idleInterval: 60_000 }).finally(
    () => {
      finished = true;
    },
  );
  expect(await turnUntil(() => finished, 2000)).toBe(false);
  expect(silent.acked).toBe(1);
  for (let i = 0; i < 100 && !finished; i++) {
    await jest.advanceTimersByTimeAsync(60_000);
    await turnUntil(() => finished, 200);
  }
  expect((await run).sent).toBe(10);
});

test('agent read-ahead - holds no per-element state: what was delivered and acked is dropped, the buffer stays bounded', async () => {
  const q = new DQS(join(tmp, 'src'));
  const n = 3000;
  await q.addMany(Array.from({ length: n }, (_, i) => new Message({ header: { seq: `${i}` }, body: `m${i}` }).serialize()));
  const inc = new QueueIncoming(new DQS(q.path), { remove: true, readAhead: 16, journal: join(tmp, 'src.journal') });
  const inner = inc as unknown as { ahead: unknown[]; pending: Set<string>; removals: unknown[] };
  let maxAhead = 0;
  let maxPending = 0;
  const sent: string[] = [];
  const stats = await runPipeline(
    inc,
    {
      description: 'memory',
      open: async () => undefined,
      close: async () => undefined,
      send: async (m) => {
        maxAhead = Math.max(maxAhead, inner.ahead.length);
        maxPending = Math.max(maxPending, inner.pending.size);
        sent.push(m.getHeader('seq') as string);
      },
    },
    { window: 50 },
  );
  expect(stats.sent).toBe(n);
  expect(sent).toHaveLength(n);
  // Two batches ahead at most, and what is locked is what is ahead, in flight or being removed: not the spool.
  expect(maxAhead).toBeLessThanOrEqual(32);
  expect(maxPending).toBeLessThanOrEqual(32 + 50 + 256);
  expect([inner.ahead.length, inner.pending.size, inner.removals.length]).toEqual([0, 0, 0]);
  expect(await q.count()).toBe(0);
});
