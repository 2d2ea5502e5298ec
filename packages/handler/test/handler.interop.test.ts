// The runner sharing spools with python-dirq 1.8 (Debian's python3-dirq) and with itself in other processes, and
// killed or stopped by signals: child processes run the built package, as an application would.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQN, DQS, Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';
import { consume } from '../src';
import { exited, fillSpool, logged, nodeScript, py, pyProcess, requireBuilt, until } from './helpers';

jest.setTimeout(120_000);

const tmp = useTempDir('msgbricks-handler-interop-');

beforeAll(() => {
  requireBuilt();
  py('import dirq.QueueSimple, dirq.queue');
});

/** A runner process: `runners` consumers of `spool`, each logging "start ID" and "done ID" around `delayMs`. */
const RUNNER = `
const fs = require('node:fs');
const { consume } = require('@msgbricks/handler');
const o = JSON.parse(process.argv[2]);
const log = (what, m) => fs.appendFileSync(o.log, what + ' ' + m.getHeader('id') + '\\n');
const consumers = [];
for (let r = 0; r < o.runners; r++) {
  consumers.push(
    consume('path=' + o.spool, async (m) => {
      log('start', m);
      if (o.delayMs) await new Promise((res) => setTimeout(res, o.delayMs));
      log('done', m);
    }, o.options),
  );
}
fs.writeFileSync(o.log + '.ready', '');
Promise.all(consumers.map((c) => c.done)).then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
`;

/** A python-dirq consumer: lock, get, log, remove, until the spool is empty. */
const PY_CONSUMER = `
import sys, json
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
out = open(sys.argv[2], 'a')
while True:
    name = q.first()
    while name:
        if q.lock(name):
            data = json.loads(q.get(name))
            out.write('done %s\\n' % data['header']['id'])
            out.flush()
            q.remove(name)
        name = q.next()
    if q.count() == 0:
        break
`;

function runner(name: string, o: Record<string, unknown>) {
  return nodeScript(tmp.path, `${name}.js`, RUNNER, [JSON.stringify(o)]);
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i)).sort();

describe('handler interop', () => {
  test('handler interop - two processes of two runners (concurrency 4) and two python-dirq consumers: every message exactly once', async () => {
    const spool = join(tmp.path, 'spool');
    await fillSpool(spool, 5000);
    const logs = ['a', 'b', 'p1', 'p2'].map((n) => join(tmp.path, `${n}.log`));
    const procs = [
      runner('a', { spool, runners: 2, log: logs[0], options: { concurrency: 4, drain: true } }),
      runner('b', { spool, runners: 2, log: logs[1], options: { concurrency: 4, drain: true } }),
      pyProcess(PY_CONSUMER, spool, logs[2] as string),
      pyProcess(PY_CONSUMER, spool, logs[3] as string),
    ];
    const results = await Promise.all(procs.map(exited));
    expect(results.map((r) => [r.code, r.stderr])).toEqual(procs.map(() => [0, '']));
    const done = logs.flatMap((l) => logged(l, 'done'));
    expect(done.length).toBe(5000);
    expect(done.sort()).toEqual(ids(5000));
    // Everyone took a share (not a proof of anything alone, but a run where one side took all proves little).
    expect(logs.map((l) => logged(l, 'done').length).every((n) => n > 0)).toBe(true);
    expect(layout(spool).filter((p) => !p.endsWith('/'))).toEqual([]);
  });

  test('handler interop - a runner killed (SIGKILL) in the middle of handlers: its messages are handled again, nothing lost', async () => {
    const spool = join(tmp.path, 'spool');
    await fillSpool(spool, 40);
    const log1 = join(tmp.path, 'first.log');
    const first = runner('first', { spool, runners: 1, log: log1, delayMs: 60_000, options: { concurrency: 4 } });
    const gone = exited(first);
    await until(() => logged(log1, 'start').length === 4, 'four handlers in flight');
    first.kill('SIGKILL');
    expect((await gone).signal).toBe('SIGKILL');
    const inFlight = logged(log1, 'start');
    // Their elements are still locked by the dead process (plus what it had read ahead).
    expect(layout(spool).filter((p) => p.endsWith('.lck')).length).toBeGreaterThanOrEqual(4);
    // The next runner finds the locks stale (maxLock 1 s) at its purge and handles everything.
    const log2 = join(tmp.path, 'second.log');
    const second = runner('second', {
      spool,
      runners: 1,
      log: log2,
      options: { concurrency: 4, maxLock: 1, purgeInterval: 200 },
    });
    const over = exited(second);
    await until(() => logged(log2, 'done').length === 40, 'all 40 handled by the second runner');
    second.kill('SIGTERM');
    expect((await over).code).toBe(0);
    expect(logged(log2, 'done').sort()).toEqual(ids(40));
    expect(inFlight.every((id) => logged(log2, 'done').includes(id))).toBe(true);
    expect(logged(log1, 'done')).toEqual([]);
    expect(layout(spool).filter((p) => !p.endsWith('/'))).toEqual([]);
  });

  test('handler interop - SIGTERM waits for the handlers in flight, removes what they handled, leaves the rest unlocked', async () => {
    const spool = join(tmp.path, 'spool');
    await fillSpool(spool, 10);
    const log = join(tmp.path, 'run.log');
    const child = runner('run', { spool, runners: 1, log, delayMs: 1500, options: { concurrency: 2 } });
    const over = exited(child);
    await until(() => logged(log, 'start').length === 2, 'two handlers in flight');
    child.kill('SIGTERM');
    const r = await over;
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(logged(log, 'done').sort()).toEqual(logged(log, 'start').sort());
    expect(logged(log, 'done')).toHaveLength(2);
    // The eight others are back: elements only, no lock, no record.
    const left = layout(spool).filter((p) => !p.endsWith('/'));
    expect(left).toHaveLength(8);
    expect(left.every((p) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(p))).toBe(true);
  });

  test('handler interop - python-dirq QueueSimple ignores attempt records: count, iterate, purge, lock, get, remove', async () => {
    const spool = join(tmp.path, 'spool');
    const q = await fillSpool(spool, 3);
    const c = consume(q, () => Promise.reject(new Error('nope')), { stopSignals: [], backoff: { initial: 600_000 } });
    let failed = 0;
    c.on('failed', () => {
      if (++failed === 3) c.stop();
    });
    await c.done;
    const records = layout(spool).filter((p) => p.endsWith('.att'));
    expect(records).toHaveLength(3);
    const out = py(
      `
import sys, json, time, os
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
names = []
n = q.first()
while n:
    names.append(n)
    n = q.next()
before = q.count()
# Everything old: python-dirq's purge breaks locks and removes temporaries older than 0 s.
q.purge(maxtemp=1, maxlock=1)
taken = []
for n in names[:2]:
    assert q.lock(n)
    taken.append(json.loads(q.get(n))['header']['id'])
    q.remove(n)
print(json.dumps({'names': names, 'count': before, 'after': q.count(), 'taken': taken}))
`,
      spool,
    );
    const r = JSON.parse(out) as { names: string[]; count: number; after: number; taken: string[] };
    expect(r.count).toBe(3);
    expect(r.names.every((n) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(n))).toBe(true);
    expect(r.taken.sort()).toEqual(['0', '1']);
    expect(r.after).toBe(1);
    // The records survived python's purge; those of the two elements python took are now orphans, which the next
    // runner removes; the third element is still waiting for its retry, with its record.
    expect(layout(spool).filter((p) => p.endsWith('.att'))).toHaveLength(3);
    const again = consume(q, () => undefined, { stopSignals: [], drain: false, rescanInterval: 50 });
    await until(() => layout(spool).filter((p) => p.endsWith('.att')).length === 1, 'orphan records removed');
    again.stop();
    expect((await again.done).handled).toBe(0);
    expect(await q.count()).toBe(1);
  });

  test('handler interop - python-dirq Queue (DQN) ignores the attempts file: count, get, remove', async () => {
    const spool = join(tmp.path, 'dqn');
    const q = new DQN(spool);
    await q.addMessage(new Message({ header: { id: '7' }, body: 'seven' }));
    const c = consume(q, () => Promise.reject(new Error('nope')), { stopSignals: [], backoff: { initial: 600_000 } });
    c.on('failed', () => c.stop());
    await c.done;
    expect(layout(spool).filter((p) => p.endsWith('/attempts'))).toHaveLength(1);
    const out = py(
      `
import sys, json
from dirq.queue import Queue
q = Queue(sys.argv[1], schema={'header': 'table', 'binary': 'binary?', 'text': 'string?'})
n = q.first()
count = q.count()
assert q.lock(n)
d = q.get(n)
q.remove(n)
print(json.dumps({'count': count, 'keys': sorted(d.keys()), 'text': d['text'], 'after': q.count()}))
`,
      spool,
    );
    expect(JSON.parse(out)).toEqual({ count: 1, keys: ['header', 'text'], text: 'seven', after: 0 });
    expect(layout(spool).filter((p) => !p.endsWith('/'))).toEqual([]);
  });

  test('handler interop - messages added by python-dirq while the runner is idle are handled, in order', async () => {
    const spool = join(tmp.path, 'spool');
    const q = new DQS(spool);
    const got: string[] = [];
    const c = consume(q, (m) => void got.push(m.getHeader('id') as string), { stopSignals: [], rescanInterval: 60_000 });
    py(
      `
import sys, json
from dirq.QueueSimple import QueueSimple
q = QueueSimple(sys.argv[1])
for i in range(20):
    q.add(json.dumps({'header': {'id': str(i)}, 'body': 'from python'}).encode())
`,
      spool,
    );
    await until(() => got.length === 20, 'the 20 python messages');
    c.stop();
    await c.done;
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(fs.readdirSync(spool).every((d) => fs.readdirSync(join(spool, d)).length === 0)).toBe(true);
  });
});
