import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN, DQS, Message } from '@msgbricks/message';
import { removeDir, tempDir } from '@msgbricks/test-support';
import { inlineCallback, moduleCallback } from '../src/core/callback';
import { PendingError, RejectedError } from '../src/core/errors';
import type { Incoming, Outgoing } from '../src/core/modules';
import { DEAD_LETTER_REASON, runPipeline } from '../src/core/pipeline';
import { QueueIncoming, QueueOutgoing } from '../src/core/queues';

let tmp: string;
beforeEach(() => {
  tmp = tempDir('agent-');
});
afterEach(() => removeDir(tmp));

async function fill(
  q: DQS | DQN,
  n: number,
  make = (i: number) => new Message({ header: { seq: String(i) }, body: `body ${i}` }),
) {
  for (let i = 0; i < n; i++) await q.addMessage(make(i));
}

async function drain(q: DQS | DQN): Promise<Message[]> {
  const out: Message[] = [];
  for await (const name of q) {
    await q.lock(name);
    out.push(await q.getMessage(name));
  }
  return out;
}

function lockFiles(root: string): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(root).filter((x) => /^[0-9a-f]{8}$/.test(x))) {
    for (const e of fs.readdirSync(join(root, d))) if (e.endsWith('.lck')) out.push(`${d}/${e}`);
  }
  return out;
}

/** An outgoing module under test control: records what it got and how many were in flight at most. */
class FakeOutgoing implements Outgoing {
  readonly description = 'fake';
  readonly got: Message[] = [];
  inflight = 0;
  maxInflight = 0;
  constructor(private readonly behave: (m: Message, n: number) => Promise<void> = () => new Promise((r) => setTimeout(r, 1))) {}
  async open() {}
  async close() {}
  async send(m: Message) {
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      await this.behave(m, this.got.length);
      this.got.push(m);
    } finally {
      this.inflight--;
    }
  }
}

describe('agent pipeline', () => {
  test('agent pipeline - queue to queue moves every message intact and removes the input (DQS -> DQN -> DQS)', async () => {
    const a = new DQS(join(tmp, 'a'));
    const b = new DQN(join(tmp, 'b'), { fsync: true });
    const c = new DQS(join(tmp, 'c'), { fsync: true, compression: 'zlib' });
    const bodies = [Buffer.from([0, 255, 1]), 'Déjà vu ☺', Buffer.alloc(0), 'x'.repeat(5000), Buffer.alloc(3000, 7)];
    await fill(
      a,
      300,
      (i) => new Message({ header: { seq: String(i), tab: 'a\tb\\c\nd', '': 'empty key' }, body: bodies[i % bodies.length] }),
    );
    const s1 = await runPipeline(new QueueIncoming(a, { remove: true }), new QueueOutgoing(b));
    const s2 = await runPipeline(new QueueIncoming(b, { remove: true }), new QueueOutgoing(c));
    expect([s1.received, s1.sent, s2.received, s2.sent]).toEqual([300, 300, 300, 300]);
    expect(await a.count()).toBe(0);
    expect(await b.count()).toBe(0);
    const out = await drain(c);
    expect(out).toHaveLength(300);
    out.sort((x, y) => Number(x.getHeader('seq')) - Number(y.getHeader('seq')));
    out.forEach((m, i) => {
      const want = new Message({
        header: { seq: String(i), tab: 'a\tb\\c\nd', '': 'empty key' },
        body: bodies[i % bodies.length],
      });
      // An empty text body cannot keep its flag in a DQS (python-messaging's JSON drops it).
      if (want.body.length > 0) expect(m.equals(want)).toBe(true);
      else expect(m.body.length).toBe(0);
    });
    // 600 fsynced writes: well past jest's 5 s default on a loaded machine.
  }, 60000);

  test('agent pipeline - without remove the elements are unlocked and stay; count stops early', async () => {
    const a = new DQS(join(tmp, 'a'));
    const out = new FakeOutgoing();
    await fill(a, 20);
    const stats = await runPipeline(new QueueIncoming(a), out, { count: 5 });
    expect(stats.stoppedBy).toBe('count');
    expect(out.got).toHaveLength(5);
    expect(await a.count()).toBe(20);
    expect(lockFiles(a.path)).toEqual([]);
  });

  test('agent pipeline - the window bounds messages in flight', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 100);
    // Each send is held until the window is full (or all that is left is in flight), then 5 ms more, in which a
    // pipeline that ignored the window would start an 8th: reaching 7 does not depend on how fast the spool reads.
    const out: FakeOutgoing = new FakeOutgoing(async () => {
      while (out.inflight < 7 && out.got.length + out.inflight < 100) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setTimeout(r, 5));
    });
    await runPipeline(new QueueIncoming(a, { remove: true }), out, { window: 7 });
    expect(out.got).toHaveLength(100);
    expect(out.maxInflight).toBe(7);
  });

  test('agent pipeline - inline callback code rewrites headers and drops by reason; dropped messages are consumed', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 10);
    const out = new FakeOutgoing();
    const events: string[] = [];
    const stats = await runPipeline(new QueueIncoming(a, { remove: true }), out, {
      callback: inlineCallback('if (Number(hdr.seq) % 2) return "odd"; hdr.destination = "/queue/even";'),
      onEvent: (e) => events.push(e.type),
    });
    expect(stats.dropped).toBe(5);
    expect(out.got.map((m) => [m.getHeader('seq'), m.getHeader('destination')])).toEqual(
      ['0', '2', '4', '6', '8'].map((s) => [s, '/queue/even']),
    );
    expect(events.filter((e) => e === 'dropped')).toHaveLength(5);
    expect(await a.count()).toBe(0);
  });

  test('agent pipeline - a filter consumes what it refuses before the callback sees it; a pipelined callback too', async () => {
    for (const pipelined of [false, true]) {
      const a = new DQS(join(tmp, `filter-${pipelined}`));
      await fill(a, 30);
      const out = new FakeOutgoing();
      const seen: string[] = [];
      const filtered: string[] = [];
      const stats = await runPipeline(new QueueIncoming(a, { remove: true }), out, {
        filter: (m) => Number(m.getHeader('seq')) % 3 === 0,
        callback: {
          pipelined,
          check: (m) => {
            seen.push(m.getHeader('seq') as string);
            return m.getHeader('seq') === '9' ? 'nine' : m;
          },
        },
        window: 4,
        onEvent: (e) => {
          if (e.type === 'filtered') filtered.push(e.id);
        },
      });
      const thirds = Array.from({ length: 10 }, (_, i) => String(3 * i));
      expect(seen.sort()).toEqual([...thirds].sort());
      expect(out.got.map((m) => m.getHeader('seq')).sort()).toEqual(thirds.filter((s) => s !== '9').sort());
      expect([stats.received, stats.sent, stats.dropped, stats.filtered]).toEqual([30, 9, 1, 20]);
      expect(filtered).toHaveLength(20);
      // Filtered messages are consumed (acked): the incoming queue is empty, nothing locked.
      expect(await a.count()).toBe(0);
      expect(lockFiles(join(tmp, `filter-${pipelined}`))).toEqual([]);
    }
  });

  test('agent pipeline - a callback module gets start data, idle and stop calls', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 3);
    const file = join(tmp, 'cb.js');
    const log = join(tmp, 'log.json');
    fs.writeFileSync(
      file,
      `const fs = require('node:fs'); const calls = [];
       exports.start = (data) => calls.push('start:' + data.tag);
       exports.check = (msg) => { calls.push('check'); return undefined; };
       exports.idle = () => calls.push('idle');
       exports.stop = () => { calls.push('stop'); fs.writeFileSync(${JSON.stringify(log)}, JSON.stringify(calls)); };`,
    );
    await runPipeline(new QueueIncoming(a, { remove: true, loop: true }), new FakeOutgoing(), {
      callback: moduleCallback(file),
      callbackData: { tag: 'x' },
      timeoutInactivity: 0.2,
    });
    const calls = JSON.parse(fs.readFileSync(log, 'utf8')) as string[];
    expect(calls.slice(0, 4)).toEqual(['start:x', 'check', 'check', 'check']);
    expect(calls).toContain('idle');
    expect(calls[calls.length - 1]).toBe('stop');
  });

  test('agent pipeline - a callback that throws sends the message to the dead-letter queue and work goes on', async () => {
    const a = new DQS(join(tmp, 'a'));
    const dead = new DQS(join(tmp, 'dead'));
    await fill(a, 6);
    const out = new FakeOutgoing();
    const stats = await runPipeline(new QueueIncoming(a, { remove: true }), out, {
      callback: inlineCallback('if (hdr.seq === "3") throw new Error("boom");'),
      deadLetter: new QueueOutgoing(dead),
    });
    expect([stats.sent, stats.deadLettered]).toEqual([5, 1]);
    const dl = await drain(dead);
    expect(dl).toHaveLength(1);
    expect(dl[0]?.getHeader('seq')).toBe('3');
    expect(dl[0]?.getHeader(DEAD_LETTER_REASON)).toBe('callback failed: boom');
    expect(await a.count()).toBe(0);
  });

  test('agent pipeline - a pipelined callback gets checks ahead; results are dispatched in order, count is exact', async () => {
    const a = new DQS(join(tmp, 'a'));
    const dead = new DQS(join(tmp, 'dead'));
    await fill(a, 300);
    let running = 0;
    let overlap = 0;
    const callback = {
      pipelined: true,
      // Results come back in any order here: the pipeline must still dispatch them in the order read.
      check: async (m: Message) => {
        overlap = Math.max(overlap, ++running);
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        running--;
        const seq = Number(m.getHeader('seq'));
        if (seq === 5) throw new Error('five');
        if (seq % 10 === 3) return 'threes';
        return m.with({ header: { seq: String(seq), checked: 'yes' } });
      },
    };
    const out = new FakeOutgoing(() => Promise.resolve());
    const stats = await runPipeline(new QueueIncoming(a, { remove: true }), out, {
      callback,
      count: 200,
      deadLetter: new QueueOutgoing(dead),
    });
    expect(overlap).toBeGreaterThan(1);
    expect([stats.received, stats.sent, stats.dropped, stats.deadLettered]).toEqual([200, 179, 20, 1]);
    const seqs = out.got.map((m) => Number(m.getHeader('seq')));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(out.got.every((m) => m.getHeader('checked') === 'yes')).toBe(true);
    expect((await drain(dead))[0]?.getHeader(DEAD_LETTER_REASON)).toBe('callback failed: five');
    expect(await a.count()).toBe(100);
    expect(lockFiles(a.path)).toEqual([]);
  });

  test('agent pipeline - an in-thread callback is never called again before its previous check settled', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 30);
    let running = 0;
    let overlap = 0;
    const check = async (m: Message) => {
      overlap = Math.max(overlap, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      return m;
    };
    const out = new FakeOutgoing();
    await runPipeline(new QueueIncoming(a, { remove: true }), out, { callback: { check } });
    expect(out.got).toHaveLength(30);
    expect(overlap).toBe(1);
  });

  test('agent pipeline - a corrupt element goes to the dead-letter queue with its raw bytes and work goes on', async () => {
    const a = new DQS(join(tmp, 'a'));
    const dead = new DQS(join(tmp, 'dead'));
    await fill(a, 2);
    const bad = await a.add('{"body": "not base64!", "encoding": "base64+zlib"}');
    await fill(a, 2);
    const deadOut = new QueueOutgoing(dead);
    const out = new FakeOutgoing();
    await deadOut.open();
    const stats = await runPipeline(
      new QueueIncoming(a, {
        remove: true,
        onCorrupt: (name, bytes, err) =>
          deadOut.send(new Message({ header: { [DEAD_LETTER_REASON]: `corrupt element ${name}: ${err.code}` }, body: bytes })),
      }),
      out,
    );
    await deadOut.close();
    expect(stats.sent).toBe(4);
    const dl = await drain(dead);
    expect(dl).toHaveLength(1);
    expect(dl[0]?.getHeader(DEAD_LETTER_REASON)).toBe(`corrupt element ${bad}: ERR_MESSAGE_BASE64`);
    expect(dl[0]?.body).toEqual(Buffer.from('{"body": "not base64!", "encoding": "base64+zlib"}'));
    expect(await a.count()).toBe(0);
  });

  test('agent pipeline - a delivery its incoming module refuses is dead-lettered whole and acked, never checked nor sent', async () => {
    const a = new DQS(join(tmp, 'a'));
    const dead = new DQS(join(tmp, 'dead'));
    await fill(a, 3);
    const inner = new QueueIncoming(a, { remove: true });
    // As StompIncoming marks a MESSAGE over the frame limits.
    const incoming: Incoming = {
      description: inner.description,
      open: () => inner.open(),
      close: () => inner.close(),
      ack: (id) => inner.ack(id),
      release: (id) => inner.release(id),
      next: async () => {
        const d = await inner.next();
        return d?.message.getHeader('seq') === '1' ? { ...d, refused: 'over the frame limits: 3 headers' } : d;
      },
    };
    const checked: string[] = [];
    const out = new FakeOutgoing();
    const stats = await runPipeline(incoming, out, {
      deadLetter: new QueueOutgoing(dead),
      callback: {
        check: (m) => {
          checked.push(m.getHeader('seq') ?? '');
          return m;
        },
      },
    });
    expect([stats.received, stats.sent, stats.deadLettered, stats.acked, stats.released]).toEqual([3, 2, 1, 3, 0]);
    expect(out.got.map((m) => m.getHeader('seq')).sort()).toEqual(['0', '2']);
    expect(checked.sort()).toEqual(['0', '2']);
    const dl = await drain(dead);
    expect(dl.map((m) => [m.getHeader('seq'), m.getHeader(DEAD_LETTER_REASON)])).toEqual([
      ['1', 'refused: over the frame limits: 3 headers'],
    ]);
    expect(await a.count()).toBe(0);
  });

  test('agent pipeline - a refused message is dead-lettered, a failed send is given back', async () => {
    const a = new DQS(join(tmp, 'a'));
    const dead = new DQS(join(tmp, 'dead'));
    await fill(a, 4);
    const out = new FakeOutgoing(async (m) => {
      if (m.getHeader('seq') === '1') throw new RejectedError('message too large');
      if (m.getHeader('seq') === '2') throw new Error('connection lost');
    });
    const stats = await runPipeline(new QueueIncoming(a, { remove: true }), out, { deadLetter: new QueueOutgoing(dead) });
    expect([stats.sent, stats.deadLettered, stats.released]).toEqual([2, 1, 1]);
    expect((await drain(dead))[0]?.getHeader(DEAD_LETTER_REASON)).toBe('refused: message too large');
    // The given-back element is still there, unlocked, for the next run.
    expect(await a.count()).toBe(1);
    expect(lockFiles(a.path)).toEqual([]);
  });

  test('agent pipeline - linger timeout: pending messages are reported and given back', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 3);
    const out = new FakeOutgoing(() => new Promise(() => undefined));
    await expect(runPipeline(new QueueIncoming(a, { remove: true }), out, { timeoutLinger: 0.2 })).rejects.toBeInstanceOf(
      PendingError,
    );
    expect(await a.count()).toBe(3);
    expect(lockFiles(a.path)).toEqual([]);
  });

  test('agent pipeline - an abort signal stops the loop gracefully', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 3);
    const ac = new AbortController();
    const out = new FakeOutgoing();
    // Aborted once the three are sent and the loop is waiting for more (not after a fixed delay, which a loaded
    // machine may need to send them).
    const poll = setInterval(() => {
      if (out.got.length === 3) ac.abort();
    }, 20);
    const stats = await runPipeline(new QueueIncoming(a, { remove: true, loop: true }), out, { signal: ac.signal }).finally(() =>
      clearInterval(poll),
    );
    expect(stats.stoppedBy).toBe('signal');
    expect(out.got).toHaveLength(3);
  });

  test('agent pipeline - the lock journal releases a dead instance own locks at once, and no one else s', async () => {
    const a = new DQS(join(tmp, 'a'));
    await fill(a, 3);
    const names: string[] = [];
    for await (const n of a) names.push(n);
    const [mine, theirs] = names as [string, string];
    await a.lock(mine);
    await a.lock(theirs); // held by another live process, not in our journal
    const journal = join(tmp, 'a.journal');
    fs.writeFileSync(journal, `+${mine}\n+${names[2]}\n-${names[2]}\n`);
    const out = new FakeOutgoing();
    await runPipeline(new QueueIncoming(a, { remove: true, journal }), out);
    expect(out.got.map((m) => m.getHeader('seq')).sort()).toEqual(['0', '2']);
    expect(lockFiles(a.path)).toEqual([`${theirs}.lck`]);
    expect(fs.existsSync(journal)).toBe(false);
  });
});

describe('agent queue outgoing - full file system', () => {
  /** A spool whose writes fail with `errno` the first `failures` times (as a full tmpfs would: see stompclt's full-disk test). */
  function failingSpool(failures: number, errno: string) {
    const added: Message[] = [];
    let calls = 0;
    const spool = {
      path: '/fake/spool',
      async addMessage(m: Message): Promise<string> {
        if (calls++ < failures)
          throw Object.assign(new Error(`${errno}: no space left on device`), { errno, code: 'ERR_DIRQ_SYSCALL' });
        added.push(m);
        return '00000000/00000000000000';
      },
    };
    return { spool: spool as unknown as DQN, added, calls: () => calls };
  }

  test('agent queue outgoing - ENOSPC: the batch waits and is written once there is room; said once, then resumed', async () => {
    const { spool, added, calls } = failingSpool(3, 'ENOSPC');
    const events: string[] = [];
    const out = new QueueOutgoing(spool, {
      fullRetry: { initialDelay: 10, maxDelay: 20 },
      onEvent: (e) => events.push(e.type === 'full' ? `full#${e.attempt}` : 'resumed'),
    });
    await out.send(new Message({ body: 'a' }));
    expect(added.map((m) => m.body)).toEqual(['a']);
    expect(calls()).toBe(4);
    expect(events).toEqual(['full#1', 'full#2', 'full#3', 'resumed']);
    await out.close();
  });

  test('agent queue outgoing - close() ends the wait: the send fails (the pipeline gives the message back)', async () => {
    const { spool } = failingSpool(1_000_000, 'EDQUOT');
    let waiting: () => void = () => undefined;
    const full = new Promise<void>((r) => {
      waiting = r;
    });
    const out = new QueueOutgoing(spool, {
      fullRetry: { initialDelay: 10_000, maxDelay: 10_000 },
      onEvent: (e) => e.type === 'full' && waiting(),
    });
    const sent = out.send(new Message({ body: 'a' }));
    await full; // the batch is now in its 10 s wait
    const t0 = Date.now();
    await out.close();
    await expect(sent).rejects.toMatchObject({ errno: 'EDQUOT' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('agent queue outgoing - other write errors are not retried', async () => {
    const { spool, calls } = failingSpool(1, 'ENAMETOOLONG');
    const out = new QueueOutgoing(spool, { fullRetry: { initialDelay: 10, maxDelay: 10 } });
    await expect(out.send(new Message({ body: 'a' }))).rejects.toMatchObject({ errno: 'ENAMETOOLONG' });
    expect(calls()).toBe(1);
    await out.close();
  });
});

describe('agent spool faults - persistent errors wait with backoff', () => {
  /** A spool whose writes fail with `errno` until `fixed()` is called (as a chmod or a remount would). */
  function brokenSpool(errno: string) {
    const added: Message[] = [];
    const at: number[] = [];
    let broken = true;
    const spool = {
      path: '/fake/spool',
      async addMessage(m: Message): Promise<string> {
        at.push(Date.now());
        if (broken) throw Object.assign(new Error(`cannot open(/fake/spool/x): ${errno}: failed`), { errno });
        added.push(m);
        return '00000000/00000000000000';
      },
    };
    return { spool: spool as unknown as DQN, added, at, fix: () => (broken = false) };
  }

  test.each(['EACCES', 'EPERM', 'EROFS', 'EIO'])(
    'agent spool faults - %s on the outgoing spool: the messages wait (never released), retried with growing delays, resumed',
    async (errno) => {
      const src = new DQS(join(tmp, 'src'));
      await fill(src, 5);
      const { spool, added, at, fix } = brokenSpool(errno);
      const events: string[] = [];
      const out = new QueueOutgoing(spool, {
        fullRetry: { initialDelay: 20, maxDelay: 80 },
        onEvent: (e) => {
          events.push(e.type === 'resumed' ? 'resumed' : `${e.type} ${e.errno}`);
          if (e.type !== 'resumed' && e.attempt === 5) fix();
        },
      });
      const stats = await runPipeline(new QueueIncoming(src, { remove: true }), out);
      expect([stats.sent, stats.released, stats.acked]).toEqual([5, 0, 5]);
      expect(added.map((m) => m.getHeader('seq')).sort()).toEqual(['0', '1', '2', '3', '4']);
      expect(events.slice(0, 6)).toEqual([...Array(5).fill(`unusable ${errno}`), 'resumed']);
      // Backoff: the gaps grow (jitter 0.5 to 1.5 around 20, 40, 80, 80 ms), never a hot loop.
      const gaps = at.slice(1, 5).map((t, i) => t - (at[i] as number));
      for (const g of gaps) expect(g).toBeGreaterThanOrEqual(9);
      expect(gaps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(100);
      expect(await src.count()).toBe(0);
    },
  );

  test('agent spool faults - giveUp ends the wait at once: the send fails with the spool error', async () => {
    const { spool } = brokenSpool('EACCES');
    const giveUp = new AbortController();
    let waiting: () => void = () => undefined;
    const unusable = new Promise<void>((r) => {
      waiting = r;
    });
    const out = new QueueOutgoing(spool, {
      fullRetry: { initialDelay: 10_000, maxDelay: 10_000 },
      giveUp: giveUp.signal,
      onEvent: (e) => e.type === 'unusable' && waiting(),
    });
    const sent = out.send(new Message({ body: 'a' }));
    await unusable;
    const t0 = Date.now();
    giveUp.abort();
    await expect(sent).rejects.toMatchObject({ errno: 'EACCES' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await out.close();
  });

  /** `q` whose listing fails with `errno` the next `failures` times. */
  function unlistable<Q extends DQS | DQN>(q: Q, failures: number, errno = 'EACCES'): { q: Q; listings: () => number } {
    const iterate = q[Symbol.asyncIterator].bind(q);
    let listings = 0;
    q[Symbol.asyncIterator] = () => {
      listings++;
      if (failures-- <= 0) return iterate();
      const fail = Object.assign(new Error(`cannot opendir(${q.path}): ${errno}: permission denied`), { errno });
      return {
        next: () => Promise.reject(fail),
        return: () => Promise.resolve({ done: true as const, value: undefined }),
        [Symbol.asyncIterator]() {
          return this;
        },
      } as unknown as AsyncGenerator<string>;
    };
    return { q, listings: () => listings };
  }

  test.each([0, 64])(
    'agent spool faults - an incoming spool that cannot be listed (readAhead %i): idle and retried with backoff, then transferred',
    async (readAhead) => {
      const { q: src, listings } = unlistable(new DQS(join(tmp, 'src')), 4);
      await fill(src, 7);
      const dst = new DQS(join(tmp, 'dst'));
      const events: string[] = [];
      const t0 = Date.now();
      const stats = await runPipeline(
        new QueueIncoming(src, {
          remove: true,
          readAhead,
          faultRetry: { initialDelay: 20, maxDelay: 40 },
          onFault: (e) => events.push(e.type === 'resumed' ? 'resumed' : `${e.type} ${e.errno} #${e.attempt}`),
        }),
        new QueueOutgoing(dst),
        { idleInterval: 1 },
      );
      expect([stats.received, stats.sent, stats.released]).toEqual([7, 7, 0]);
      expect(events).toEqual(['unusable EACCES #1', 'unusable EACCES #2', 'unusable EACCES #3', 'unusable EACCES #4', 'resumed']);
      // Tried again after each wait, not at every idle turn of the pipeline (1 ms here).
      expect(listings()).toBeLessThanOrEqual(7);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
      expect(await dst.count()).toBe(7);
      expect(lockFiles(src.path)).toEqual([]);
    },
  );
});
