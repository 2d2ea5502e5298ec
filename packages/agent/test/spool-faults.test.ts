import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN, Message } from '@msgbricks/message';
import { backdate, layout, removeDir, tempDir } from '@msgbricks/test-support';
import type { Outgoing } from '../src/core/modules';
import { runPipeline } from '../src/core/pipeline';
import { type PurgeOutcome, QueueIncoming } from '../src/core/queues';

/**
 * Odd entries in a spool, as an operator meets them (issue 11): they are reported and stepped over, never the end
 * of the daemon. Real files in fresh temporary directories.
 */

let tmp: string;
beforeEach(() => {
  tmp = tempDir('agent-faults-');
});
afterEach(() => removeDir(tmp));

/** Collects what it is sent; `until` is told the count after each. */
class Collect implements Outgoing {
  readonly description = 'collect';
  readonly got: Message[] = [];
  constructor(private readonly until: (n: number) => void = () => undefined) {}
  async open() {}
  async close() {}
  async send(m: Message) {
    this.got.push(m);
    this.until(this.got.length);
  }
}

describe('agent spool faults', () => {
  test('agent spool faults - the periodic purge of a --loop agent reports odd entries and the daemon goes on', async () => {
    const q = new DQN(join(tmp, 'in'));
    for (let i = 0; i < 3; i++) await q.addMessage(new Message({ body: `m${i}` }));
    // A stale temporary element holding a sub-directory (was: EISDIR thrown out of the purge, the daemon dead),
    // and a file where obsolete/ should be (was: ENOTDIR, the same).
    const stale = join(q.path, 'temporary', '0123456789abcd');
    fs.mkdirSync(join(stale, 'sub'), { recursive: true });
    backdate(stale, 1000);
    fs.rmdirSync(join(q.path, 'obsolete'));
    fs.writeFileSync(join(q.path, 'obsolete'), 'stray');
    const outcomes: PurgeOutcome[] = [];
    const stop = new AbortController();
    const incoming = new QueueIncoming(q, {
      loop: true,
      remove: false,
      purgeInterval: 0,
      onPurge: (o) => {
        outcomes.push(o);
        if (outcomes.length >= 3) stop.abort();
      },
    });
    const out = new Collect();
    const stats = await runPipeline(incoming, out, { signal: stop.signal, idleInterval: 5 });
    expect(stats.stoppedBy).toBe('signal');
    // Every element was sent on the first pass; the later passes found them again (not removed), but only once each
    // per pass: what matters is that the loop went on past several purges.
    expect(out.got.slice(0, 3).map((m) => String(m.body))).toEqual(['m0', 'm1', 'm2']);
    expect(outcomes.length).toBeGreaterThanOrEqual(3);
    for (const o of outcomes) {
      expect('result' in o).toBe(true);
      if (!('result' in o)) continue;
      expect(o.result.warnings).toEqual([expect.objectContaining({ path: join(q.path, 'obsolete'), errno: 'ENOTDIR' })]);
    }
    const first = outcomes[0] as { result: { removedTemporary: number } };
    expect(first.result.removedTemporary).toBe(1);
    expect(layout(join(q.path, 'temporary'))).toEqual([]);
    expect(fs.readFileSync(join(q.path, 'obsolete'), 'utf8')).toBe('stray');
  });

  test('agent spool faults - an element holding a sub-directory is sent and removed, not "released" into obsolete/', async () => {
    // Was: remove() moved it into obsolete/ then failed (EISDIR); the pipeline logged it "released: it will be
    // delivered again" although it had left the queue, and the next purge died on obsolete/NAME/sub.
    const q = new DQN(join(tmp, 'in'));
    const name = await q.addMessage(new Message({ body: 'odd' }));
    fs.mkdirSync(join(q.path, name, 'sub'));
    const events: string[] = [];
    const out = new Collect();
    const stats = await runPipeline(new QueueIncoming(q, { remove: true }), out, { onEvent: (e) => events.push(e.type) });
    expect(out.got.map((m) => String(m.body))).toEqual(['odd']);
    expect(stats).toMatchObject({ sent: 1, released: 0 });
    expect(events).toEqual([]);
    expect(layout(q.path)).toEqual(['00000000/', 'obsolete/', 'temporary/']);
  });

  test('agent spool faults - one by one (DQN): a symlinked element is reported once and skipped, the rest is sent', async () => {
    const q = new DQN(join(tmp, 'in'));
    for (let i = 0; i < 2; i++) await q.addMessage(new Message({ body: `m${i}` }));
    const outside = join(tmp, 'elsewhere');
    fs.mkdirSync(outside);
    fs.writeFileSync(join(outside, 'body'), 'secret');
    fs.symlinkSync(outside, join(q.path, '00000000', '00000000000001'));
    const told: [string, string][] = [];
    const incoming = new QueueIncoming(q, {
      remove: true,
      onUnreadable: async (name, err) => {
        told.push([name, (err as { errno?: string }).errno ?? '']);
        return 'skip';
      },
    });
    const out = new Collect();
    const stats = await runPipeline(incoming, out);
    expect(out.got.map((m) => String(m.body))).toEqual(['m0', 'm1']);
    expect(stats.sent).toBe(2);
    expect(told).toEqual([['00000000/00000000000001', 'ELOOP']]);
    expect(layout(outside)).toEqual(['body']);
  });

  test('agent spool faults - a purge that cannot list the queue at all is reported through onPurge, not thrown', async () => {
    const q = new DQN(join(tmp, 'in'));
    await q.addMessage(new Message({ body: 'm' }));
    const outcomes: PurgeOutcome[] = [];
    let moved = false;
    const incoming = new QueueIncoming(q, { loop: true, purgeInterval: 0, onPurge: (o) => outcomes.push(o) });
    // The queue directory goes away under the agent after the first message: the purge at the end of the pass
    // fails as a whole and says so; the next pass then fails on the missing spool itself (not the purge's doing).
    const out = new Collect(() => {
      if (!moved) fs.renameSync(q.path, join(tmp, 'elsewhere'));
      moved = true;
    });
    await expect(runPipeline(incoming, out, { idleInterval: 5 })).rejects.toMatchObject({ syscall: 'opendir', errno: 'ENOENT' });
    expect(out.got.map((m) => String(m.body))).toEqual(['m']);
    expect(outcomes).toEqual([{ error: expect.objectContaining({ errno: 'ENOENT' }) }]);
  });
});
