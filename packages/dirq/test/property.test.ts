import * as fs from 'node:fs';
import { join } from 'node:path';
import { NotLockedError, Queue, QueueSimple } from '@msgbricks/dirq';
import { backdate, removeDir, tempDir } from '@msgbricks/test-support';
import fc from 'fast-check';

// Model-based test: random sequences of operations run against the real queue and against an
// in-memory model of what python-dirq's semantics say must happen; every result and the final
// on-disk state must agree.

interface Elt {
  data: Buffer;
  locked: boolean;
  aged: boolean;
}
interface Model {
  elts: Map<string, Elt>;
}
interface Real {
  kind: 'simple' | 'normal';
  q: QueueSimple | Queue;
  lastAdded: string;
}

const MISSING = '00000001/00000001000000';

function pick(m: Model, i: number): string {
  const names = [...m.elts.keys()].sort();
  return names.length === 0 || i % (names.length + 1) === names.length ? MISSING : (names[i % (names.length + 1)] as string);
}

async function add(r: Real, data: Buffer): Promise<string> {
  return r.q instanceof QueueSimple ? r.q.add(data) : r.q.add({ body: data });
}

async function read(r: Real, name: string): Promise<Buffer> {
  return r.q instanceof QueueSimple ? r.q.get(name) : ((await r.q.get(name)).body as Buffer);
}

class AddCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly data: Uint8Array) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const name = await add(r, Buffer.from(this.data));
    expect(m.elts.has(name)).toBe(false);
    expect(name.slice(9) > r.lastAdded.slice(9)).toBe(true);
    r.lastAdded = name;
    m.elts.set(name, { data: Buffer.from(this.data), locked: false, aged: false });
  }
  toString = () => `add(${this.data.length} bytes)`;
}

class LockCmd implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly permissive: boolean,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const name = pick(m, this.i);
    const e = m.elts.get(name);
    const expected = e !== undefined && !e.locked;
    if (this.permissive || expected) {
      expect(await r.q.lock(name, this.permissive)).toBe(expected);
    } else {
      await expect(r.q.lock(name, false)).rejects.toMatchObject({ errno: e === undefined ? 'ENOENT' : 'EEXIST' });
    }
    if (e && expected) {
      e.locked = true;
      e.aged = false;
    }
  }
  toString = () => `lock(${this.i}, ${this.permissive})`;
}

class UnlockCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const name = pick(m, this.i);
    const e = m.elts.get(name);
    expect(await r.q.unlock(name, true)).toBe(e?.locked === true);
    if (e) e.locked = false;
  }
  toString = () => `unlock(${this.i})`;
}

class GetCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const name = pick(m, this.i);
    const e = m.elts.get(name);
    if (e?.locked) expect(await read(r, name)).toEqual(e.data);
    else await expect(read(r, name)).rejects.toThrow(e ? NotLockedError : /no such element/);
  }
  toString = () => `get(${this.i})`;
}

class RemoveCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const name = pick(m, this.i);
    const e = m.elts.get(name);
    if (e?.locked) {
      await r.q.remove(name);
      m.elts.delete(name);
    } else {
      await expect(r.q.remove(name)).rejects.toThrow(e ? NotLockedError : /no such element/);
    }
  }
  toString = () => `remove(${this.i})`;
}

class AgeLockCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => [...m.elts.values()].some((e) => e.locked);
  async run(m: Model, r: Real) {
    const name = pick(m, this.i);
    const e = m.elts.get(name);
    if (!e?.locked) return;
    // The lock time is the element file's mtime (simple) or the element directory's (normal).
    backdate(join(r.q.path, name), 1000);
    e.aged = true;
  }
  toString = () => `ageLock(${this.i})`;
}

class PurgeCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await r.q.purge();
    let broken = 0;
    for (const e of m.elts.values()) {
      if (e.locked && e.aged) {
        e.locked = false;
        e.aged = false;
        broken++;
      }
    }
    expect(res.brokenLocks).toBe(broken);
  }
  toString = () => 'purge()';
}

class CheckCmd implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    expect(await r.q.count()).toBe(m.elts.size);
    const names: string[] = [];
    for await (const n of r.q) names.push(n);
    expect(names).toEqual([...m.elts.keys()].sort());
    for (const [name, e] of m.elts) {
      const lockPath = r.kind === 'simple' ? join(r.q.path, `${name}.lck`) : join(r.q.path, name, 'locked');
      expect(fs.existsSync(lockPath)).toBe(e.locked);
    }
  }
  toString = () => 'check()';
}

const commands = [
  fc.uint8Array({ maxLength: 64 }).map((d) => new AddCmd(d)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, p]) => new LockCmd(i, p)),
  fc.nat().map((i) => new UnlockCmd(i)),
  fc.nat().map((i) => new GetCmd(i)),
  fc.nat().map((i) => new RemoveCmd(i)),
  fc.nat().map((i) => new AgeLockCmd(i)),
  fc.constant(new PurgeCmd()),
  fc.constant(new CheckCmd()),
];

describe.each(['simple', 'normal'] as const)('dirq property (%s)', (kind) => {
  test(`dirq property - random add/lock/unlock/get/remove/purge sequences agree with the model (${kind})`, async () => {
    const tmp = tempDir('dirq-');
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 60 }), async (cmds) => {
          const path = join(tmp, String(run++));
          const q =
            kind === 'simple'
              ? new QueueSimple(path, { granularity: 1 })
              : new Queue(path, { schema: { body: 'binary' }, maxelts: 3 });
          await fc.asyncModelRun(
            () => ({ model: { elts: new Map() }, real: { kind, q, lastAdded: '' } }),
            [...cmds, new CheckCmd()],
          );
        }),
        { numRuns: 60 },
      );
    } finally {
      removeDir(tmp);
    }
  }, 120_000);
});
