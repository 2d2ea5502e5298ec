// The handler runner on real spools (DQS and DQN in temporary directories): removal, retries, attempt records,
// dead-lettering, time-outs, stops, wake-ups, lock refresh.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN, DQS, Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';
import {
  consume,
  DEAD_LETTER_ATTEMPTS,
  DEAD_LETTER_ERROR,
  DEAD_LETTER_REASON,
  type HandlerContext,
  RetryLaterError,
} from '../src';

jest.setTimeout(60_000);

const tmp = useTempDir('msgbricks-handler-');
const FAST = { backoff: { initial: 1, max: 1 }, stopSignals: [] as NodeJS.Signals[], rescanInterval: 50 };

async function filled(kind: 'DQS' | 'DQN', n: number, dir = 'spool'): Promise<DQS | DQN> {
  const q = kind === 'DQS' ? new DQS(join(tmp.path, dir)) : new DQN(join(tmp.path, dir));
  for (let i = 0; i < n; i++) await q.addMessage(new Message({ header: { i: String(i) }, body: `message ${i}` }));
  return q;
}

/** The files left in the spool: elements, locks, records (directories and DQN's fixed ones left out). */
function files(q: DQS | DQN): string[] {
  return layout(q.path).filter((p) => !p.endsWith('/') && !p.startsWith('temporary') && !p.startsWith('obsolete'));
}

async function drained(q: DQS | DQN): Promise<Message[]> {
  const out: Message[] = [];
  for await (const name of q) out.push(await q.dequeueMessage(name));
  return out;
}

for (const kind of ['DQS', 'DQN'] as const) {
  describe(`runner (${kind})`, () => {
    test(`runner - handles each message once, removes it, then drains (${kind})`, async () => {
      const q = await filled(kind, 50);
      const seen: string[] = [];
      const c = consume(q, (m) => void seen.push(m.getHeader('i') as string), { ...FAST, concurrency: 3, drain: true });
      const counters = await c.done;
      expect(seen.sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
      expect(counters).toMatchObject({ handled: 50, failed: 0, inFlight: 0, attempts: 50 });
      expect(files(q)).toEqual([]);
    });

    test(`runner - a message that fails twice then succeeds is handled once; its record is kept between (${kind})`, async () => {
      const q = await filled(kind, 1);
      const attempts: number[] = [];
      const records: string[] = [];
      const c = consume(
        q,
        (_m, ctx) => {
          attempts.push(ctx.attempt);
          records.push(...files(q).filter((f) => /(\.att|\/attempts)$/.test(f)));
          if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
        },
        { ...FAST, drain: true },
      );
      expect(await c.done).toMatchObject({ handled: 1, failed: 2, retried: 2 });
      expect(attempts).toEqual([1, 2, 3]);
      // No record before the first failure; then one, beside (DQS) or inside (DQN) the element.
      expect(records).toHaveLength(2);
      expect(records[0]).toMatch(kind === 'DQS' ? /^[0-9a-f]{8}\/[0-9a-f]{14}\.att$/ : /^[0-9a-f]{8}\/[0-9a-f]{14}\/attempts$/);
      expect(files(q)).toEqual([]);
    });
  });
}

describe('runner', () => {
  test('runner - the attempt record is one JSON line beside the element, with the count, the retry time and the error', async () => {
    const q = (await filled('DQS', 1)) as DQS;
    const c = consume(q, () => Promise.reject(new TypeError('no such customer')), {
      ...FAST,
      backoff: { initial: 60_000 },
    });
    await new Promise((resolve) => c.once('failed', resolve));
    c.stop();
    await c.done;
    const [element, record] = files(q);
    expect(record).toBe(`${element}.att`);
    const text = fs.readFileSync(join(q.path, record as string), 'utf8');
    expect(text).toMatch(/^\{.*\}\n$/);
    const r = JSON.parse(text);
    expect(r).toEqual({ attempts: 1, retryAt: expect.any(Number), error: 'TypeError: no such customer' });
    expect(r.retryAt).toBeGreaterThan(Date.now() + 50_000);
    // Waiting for its retry: neither this runner nor another takes it now.
    expect(await q.count()).toBe(1);
    const again = consume(q, () => undefined, { ...FAST, drain: false });
    await new Promise((resolve) => setTimeout(resolve, 300));
    again.stop();
    expect((await again.done).handled).toBe(0);
  });

  test('runner - always failing: dead-lettered after exactly maxAttempts, across a restart, with reason and error', async () => {
    const q = await filled('DQS', 1);
    const dlq = new DQS(join(tmp.path, 'dead'));
    let calls = 0;
    const handler = (): void => {
      calls++;
      throw new Error(`attempt ${calls} failed\nwith details`);
    };
    const first = consume(q, handler, { ...FAST, maxAttempts: 4, deadLetter: dlq });
    first.on('failed', () => {
      if (calls === 2) first.stop();
    });
    expect(await first.done).toMatchObject({ failed: 2, deadLettered: 0 });
    expect(await q.count()).toBe(1);
    const second = consume(q, handler, { ...FAST, maxAttempts: 4, deadLetter: `path=${join(tmp.path, 'dead')}`, drain: true });
    expect(await second.done).toMatchObject({ failed: 2, deadLettered: 1 });
    expect(calls).toBe(4);
    expect(files(q)).toEqual([]);
    const [dead] = await drained(dlq);
    expect(dead?.body).toBe('message 0');
    expect(dead?.getHeader('i')).toBe('0');
    expect(dead?.getHeader(DEAD_LETTER_REASON)).toBe('failed 4 attempts');
    expect(dead?.getHeader(DEAD_LETTER_ERROR)).toBe('attempt 4 failed with details');
    expect(dead?.getHeader(DEAD_LETTER_ATTEMPTS)).toBe('4');
  });

  test('runner - RetryLaterError releases the message without counting an attempt', async () => {
    const q = await filled('DQS', 1);
    const attempts: number[] = [];
    const c = consume(
      q,
      (_m, ctx) => {
        attempts.push(ctx.attempt);
        if (attempts.length < 3) throw new RetryLaterError('database down', { delay: 5 });
      },
      { ...FAST, drain: true, maxAttempts: 1, deadLetter: `path=${join(tmp.path, 'dead')}` },
    );
    expect(await c.done).toMatchObject({ handled: 1, failed: 0, retried: 2, deadLettered: 0 });
    expect(attempts).toEqual([1, 1, 1]);
  });

  test('runner - the timeout aborts a stuck handler and the attempt counts as failed', async () => {
    const q = await filled('DQS', 1);
    const reasons: unknown[] = [];
    const c = consume(
      q,
      (_m, ctx: HandlerContext) =>
        new Promise<void>((resolve, reject) => {
          if (ctx.attempt > 1) return resolve();
          ctx.signal.addEventListener('abort', () => {
            reasons.push(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        }),
      { ...FAST, timeout: 100, drain: true },
    );
    const timeouts: unknown[] = [];
    c.on('timeout', (e) => timeouts.push(e));
    expect(await c.done).toMatchObject({ handled: 1, failed: 1, inFlight: 0 });
    expect(timeouts).toHaveLength(1);
    expect(reasons).toEqual([expect.objectContaining({ code: 'ERR_HANDLER_TIMEOUT' })]);
  });

  test('runner - a handler that ignores the signal does not hold its slot past the timeout', async () => {
    const q = await filled('DQS', 2);
    let started = 0;
    const c = consume(
      q,
      (m) => {
        started++;
        // The first message's first attempt never ends.
        if (m.getHeader('i') === '0' && started === 1) return new Promise(() => undefined);
        return undefined;
      },
      { ...FAST, timeout: 100, drain: true, concurrency: 1 },
    );
    expect(await c.done).toMatchObject({ handled: 2, failed: 1 });
  });

  test('runner - stop waits for the handlers in flight, then removes what they handled', async () => {
    const q = await filled('DQS', 3);
    let finish: () => void = () => undefined;
    const running = new Promise<void>((resolve) => {
      finish = resolve;
    });
    let inFlight = 0;
    const c = consume(
      q,
      async () => {
        inFlight++;
        await running;
      },
      { ...FAST, concurrency: 3 },
    );
    while (inFlight < 3) await new Promise((r) => setTimeout(r, 5));
    c.stop();
    let over = false;
    void c.done.then(() => {
      over = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(over).toBe(false);
    finish();
    expect(await c.done).toMatchObject({ handled: 3 });
    expect(files(q)).toEqual([]);
  });

  test('runner - past stopTimeout, handlers still running are aborted and their messages released, unlocked', async () => {
    const q = await filled('DQS', 2);
    const aborted: string[] = [];
    const c = consume(
      q,
      (_m, ctx) =>
        new Promise(() => {
          ctx.signal.addEventListener('abort', () => aborted.push((ctx.signal.reason as { code: string }).code));
        }),
      { ...FAST, concurrency: 2, stopTimeout: 100 },
    );
    while (c.counters.inFlight < 2) await new Promise((r) => setTimeout(r, 5));
    const abandoned: unknown[] = [];
    c.on('abandoned', (e) => abandoned.push(e));
    c.stop();
    expect(await c.done).toMatchObject({ handled: 0, inFlight: 0 });
    expect(aborted).toEqual(['ERR_HANDLER_STOPPED', 'ERR_HANDLER_STOPPED']);
    expect(abandoned).toHaveLength(2);
    // Both elements are back, unlocked (no .lck), nothing else.
    expect(files(q)).toEqual([
      expect.stringMatching(/^[0-9a-f]{8}\/[0-9a-f]{14}$/),
      expect.stringMatching(/^[0-9a-f]{8}\/[0-9a-f]{14}$/),
    ]);
  });

  test('runner - an AbortSignal stops it; elements read ahead go back unlocked', async () => {
    const q = await filled('DQS', 20);
    const ac = new AbortController();
    const c = consume(
      q,
      async () => {
        ac.abort();
      },
      { ...FAST, signal: ac.signal },
    );
    const counters = await c.done;
    expect(counters.handled).toBeGreaterThanOrEqual(1);
    const left = files(q);
    expect(left).toHaveLength(20 - counters.handled);
    expect(left.every((f) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(f))).toBe(true);
  });

  test('runner - synchronous handlers on a busy spool leave timers their turn (a stop by timer lands mid-pass)', async () => {
    const q = (await filled('DQS', 0)) as DQS;
    const one = new Message({ body: 'x' }).serialize();
    await q.addMany(Array.from({ length: 3000 }, () => one));
    let timerSet = false;
    const c = consume(
      q,
      () => {
        // A timer set by the first message: it can only fire once the runner gives the event loop a turn.
        if (!timerSet) {
          timerSet = true;
          setTimeout(() => c.stop(), 0);
        }
        // About 0.2 ms of work per message, none of it awaited.
        const end = performance.now() + 0.2;
        while (performance.now() < end);
      },
      FAST,
    );
    const counters = await c.done;
    expect(counters.handled).toBeGreaterThan(0);
    expect(counters.handled).toBeLessThan(3000);
    expect(await q.count()).toBe(3000 - counters.handled);
  });

  test('runner - concurrency runs that many handlers at once', async () => {
    const q = await filled('DQS', 12);
    let now = 0;
    let most = 0;
    const c = consume(
      q,
      async () => {
        now++;
        most = Math.max(most, now);
        await new Promise((r) => setTimeout(r, 20));
        now--;
      },
      { ...FAST, concurrency: 4, drain: true },
    );
    await c.done;
    expect(most).toBe(4);
  });

  test('runner - an element added while idle is handled at once (file-system events), not at the rescan', async () => {
    const q = await filled('DQS', 0);
    const got: number[] = [];
    const c = consume(q, () => void got.push(Date.now()), { ...FAST, rescanInterval: 60_000 });
    // Let it go idle (a pass, armed, a second pass).
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await q.addMessage(new Message({ body: 'late' }));
    while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
    c.stop();
    await c.done;
    expect((got[0] as number) - t0).toBeLessThan(5000);
  });

  test('runner - a corrupt element goes to the dead-letter queue as its bytes, with the reason', async () => {
    const q = await filled('DQS', 1);
    const raw = await (q as DQS).add('not a message');
    const dlq = new DQS(join(tmp.path, 'dead'));
    const c = consume(q, () => undefined, { ...FAST, drain: true, deadLetter: dlq });
    const corrupt: unknown[] = [];
    c.on('corrupt', (e) => corrupt.push(e));
    expect(await c.done).toMatchObject({ handled: 1, deadLettered: 1 });
    expect(corrupt).toEqual([expect.objectContaining({ name: raw })]);
    const [dead] = await drained(dlq);
    expect(Buffer.from(dead?.body as Buffer).toString()).toBe('not a message');
    expect(dead?.getHeader(DEAD_LETTER_REASON)).toBe('corrupt');
  });

  test('runner - without a dead-letter queue, a corrupt element is reported once and left in place, unlocked', async () => {
    const q = (await filled('DQS', 2)) as DQS;
    const raw = await q.add('{"header": 7}');
    const corrupt: unknown[] = [];
    const c = consume(q, () => undefined, { ...FAST, drain: true });
    c.on('corrupt', (e) => corrupt.push(e));
    expect(await c.done).toMatchObject({ handled: 2, deadLettered: 0 });
    expect(corrupt).toEqual([
      expect.objectContaining({ name: raw, error: expect.objectContaining({ code: 'ERR_MESSAGE_INVALID' }) }),
    ]);
    expect(files(q)).toEqual([raw]);
  });

  test('runner - a record whose element is gone (taken by another consumer) is removed', async () => {
    const q = (await filled('DQS', 2)) as DQS;
    const names: string[] = [];
    for await (const n of q) names.push(n);
    fs.writeFileSync(join(q.path, `${names[0]}.att`), '{"attempts":1,"retryAt":0,"error":"x"}\n');
    await q.dequeueMessage(names[0] as string);
    const c = consume(q, () => undefined, { ...FAST, drain: true });
    await c.done;
    // The removal is asynchronous (it never holds a pass up): wait for it.
    for (let i = 0; i < 100 && files(q).length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(files(q)).toEqual([]);
  });

  test.each(['DQS', 'DQN'] as const)(
    'runner - a long handler keeps its lock fresh, so that no purge breaks it (%s)',
    async (kind) => {
      const q = await filled(kind, 1);
      let name = '';
      for await (const n of q) name = n;
      const lock = kind === 'DQS' ? join(q.path, `${name}.lck`) : join(q.path, name, 'locked');
      const held: boolean[] = [];
      const c = consume(
        q,
        async () => {
          for (let i = 0; i < 5; i++) {
            await new Promise((r) => setTimeout(r, 400));
            // Another consumer's purge, with the same maxlock: a lock not refreshed for 0.9 s is broken.
            await q.purge({ maxlock: 0.9 });
            held.push(fs.existsSync(lock));
          }
        },
        { ...FAST, maxLock: 0.9, drain: true },
      );
      expect(await c.done).toMatchObject({ handled: 1 });
      expect(held).toEqual([true, true, true, true, true]);
      expect(files(q)).toEqual([]);
    },
  );

  test('runner - bad options are all reported at once, by name', () => {
    const q = join(tmp.path, 'spool');
    expect(() => consume(q, () => undefined)).toThrow(/invalid queue spec/);
    expect(() =>
      consume(`path=${q}`, () => undefined, { concurrency: 0, timeout: -1, maxAttempts: 3, colour: 'red' } as never),
    ).toThrow(
      'invalid options: colour: unknown option; concurrency: 0 (an integer >= 1); timeout: -1 (a number >= 0); maxAttempts: needs deadLetter (a message is never dropped)',
    );
    expect(() => consume(`path=${q}`, 'nope' as never)).toThrow('handler: not a function');
    expect(() => consume('type=NULL', () => undefined)).toThrow(/NULL queue/);
  });
});
