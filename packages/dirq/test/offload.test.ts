import * as fs from 'node:fs';
import { join } from 'node:path';
import { FileSystemError, NoSuchElementError, NotLockedError, QueueSimple } from '@msgbricks/dirq';
import { layout, useTempDir } from '@msgbricks/test-support';
import { addMany } from '../src/offload-ops';

// The batch operations that run on a helper thread (offload.ts): same files and semantics as their
// one-element counterparts.

const tmp = useTempDir('dirq-');

const elements = (root: string) => layout(root).filter((p) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(p));

test.each([false, true])(
  'dirq offload - addBatch (fsync %s) writes what addMany writes, in order, nothing else left',
  async (fsync) => {
    const q = new QueueSimple(join(tmp.path, 'q'), { fsync });
    for (const n of [1, 5, 40]) {
      // 40 >= 32: with fsync, the batch goes through one syncfs instead of an fdatasync per file.
      const items = Array.from({ length: n }, (_, i) => `batch ${n} item ${i}`);
      const names = await q.addBatch(items);
      expect(names).toHaveLength(n);
      expect([...names].sort()).toEqual(names);
      for (const [i, name] of names.entries()) expect(fs.readFileSync(join(q.path, name), 'utf8')).toBe(items[i]);
    }
    expect(await q.addBatch([])).toEqual([]);
    expect(elements(q.path)).toHaveLength(46);
    expect(layout(q.path).filter((p) => p.endsWith('.tmp') || p.endsWith('.lck'))).toEqual([]);
    // Mixed with add(): names stay unique and in time order.
    const a = await q.add('single');
    const b = await q.addBatch(['after']);
    expect(a < (b[0] as string)).toBe(true);
  },
);

test('dirq offload - addBatch honours the umask', async () => {
  const q = new QueueSimple(join(tmp.path, 'q'), { umask: 0o077 });
  const [name] = await q.addBatch(['x']);
  expect(fs.statSync(join(q.path, name as string)).mode & 0o777).toBe(0o600);
  expect(fs.statSync(join(q.path, (name as string).slice(0, 8))).mode & 0o777).toBe(0o700);
});

test('dirq offload - lockGetMany locks and reads; null for a locked or vanished element; removeMany removes', async () => {
  const q = new QueueSimple(join(tmp.path, 'q'));
  const names = await q.addMany(['a', 'b', 'c', 'd']);
  const [a, b, c, d] = names as [string, string, string, string];
  const other = new QueueSimple(q.path);
  expect(await other.lock(b)).toBe(true);
  fs.unlinkSync(join(q.path, c));
  expect(await q.unlockedOf(names)).toEqual([a, c, d]);
  const got = await q.lockGetMany(names);
  expect(got.map((r) => (Buffer.isBuffer(r) ? r.toString() : r))).toEqual(['a', null, null, 'd']);
  expect(fs.existsSync(join(q.path, `${a}.lck`))).toBe(true);
  expect(fs.existsSync(join(q.path, `${c}.lck`))).toBe(false);
  // a and d are ours: removed without a check; b (not held by q, but locked) checked and removed.
  expect(await q.removeMany([a, d, b])).toEqual([undefined, undefined, undefined]);
  expect(elements(q.path)).toEqual([]);
  expect(layout(q.path).filter((p) => !p.endsWith('/'))).toEqual([]);
});

test('dirq offload - removeMany refuses an element that is not locked, or gone, as remove() does', async () => {
  const q = new QueueSimple(join(tmp.path, 'q'));
  const [a, b] = (await q.addMany(['a', 'b'])) as [string, string];
  const errors = await q.removeMany([a, '00000000/00000000000000']);
  expect(errors[0]).toBeInstanceOf(NotLockedError);
  expect(errors[1]).toBeInstanceOf(NoSuchElementError);
  expect(elements(q.path)).toEqual([a, b].sort());
  // The lock broken meanwhile (a purge): the data goes, the error is reported.
  const got = await q.lockGetMany([b]);
  expect(Buffer.isBuffer(got[0])).toBe(true);
  fs.unlinkSync(join(q.path, `${b}.lck`));
  const [err] = await q.removeMany([b]);
  expect(err).toBeInstanceOf(FileSystemError);
  expect((err as FileSystemError).errno).toBe('ENOENT');
});

test('dirq offload - lockGetMany reports a read failure and leaves the element unlocked', async () => {
  const q = new QueueSimple(join(tmp.path, 'q'));
  const [a] = (await q.addMany(['a'])) as [string];
  // A directory where the element file should be: link() fails with EPERM, not a lock conflict.
  const bad = `${a.slice(0, 8)}/${'f'.repeat(14)}`;
  fs.mkdirSync(join(q.path, bad));
  const [r1, r2] = await q.lockGetMany([bad, a]);
  expect(r1).toBeInstanceOf(FileSystemError);
  expect(Buffer.isBuffer(r2) && r2.toString()).toBe('a');
  expect(fs.existsSync(join(q.path, `${bad}.lck`))).toBe(false);
});

test('dirq offload - the helper thread takes a new name from the shared name clock when a name is taken', async () => {
  // The thread's operations called in-process (offload-ops.ts is what offload-worker.js runs).
  const root = join(tmp.path, 'q');
  const dir = join(root, '6000beef');
  fs.mkdirSync(dir, { recursive: true });
  const taken = ['6000beef00000a', '6000beef00000b'];
  fs.writeFileSync(join(dir, `${taken[0]}.tmp`), 'someone else writing');
  fs.writeFileSync(join(dir, taken[1] as string), 'someone else published');
  const job = { root, dir, names: taken, items: [Buffer.from('x'), Buffer.from('y')], rndhex: 10 };
  const modes = { fileMode: 0o666, dirMode: 0o777, fixFile: false, fixDir: false, fsync: false, syncfsBatch: 32 };
  const names = await addMany({ ...job, ...modes });
  expect(names).toHaveLength(2);
  for (const n of names) expect(n).toMatch(/^[0-9a-f]{13}a$/);
  expect(names[0]).not.toBe(taken[0]);
  expect(names[1]).not.toBe(taken[1]);
  expect((names[0] as string) < (names[1] as string)).toBe(true);
  expect(fs.readFileSync(join(dir, names[0] as string), 'utf8')).toBe('x');
  expect(fs.readFileSync(join(dir, names[1] as string), 'utf8')).toBe('y');
  expect(fs.readFileSync(join(dir, taken[1] as string), 'utf8')).toBe('someone else published');
  expect(layout(root).filter((p) => p.endsWith('.tmp'))).toEqual([`6000beef/${taken[0]}.tmp`]);
});
