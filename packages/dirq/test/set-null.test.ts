import * as fs from 'node:fs';
import { join } from 'node:path';
import { InvalidOptionError, Queue, QueueNull, QueueSet, QueueSimple } from '@msgbricks/dirq';
import { useTempDir } from '@msgbricks/test-support';

describe('dirq set and null', () => {
  const tmp = useTempDir('dirq-');

  function plant(root: string, names: string[]): void {
    for (const n of names) {
      fs.mkdirSync(join(root, n.slice(0, 8)), { recursive: true });
      fs.writeFileSync(join(root, n), n);
    }
  }

  test('dirq set - merges on the full "dir/name" string, like python-dirq', async () => {
    const a = new QueueSimple(join(tmp.path, 'a'));
    const b = new QueueSimple(join(tmp.path, 'b'));
    plant(a.path, ['00000001/00000005000000', '00000003/00000001000000']);
    plant(b.path, ['00000002/00000002000000', '00000002/00000004000000']);
    const set = new QueueSet(a, b);
    const got: string[] = [];
    for await (const { queue, name } of set) got.push(`${queue === a ? 'a' : 'b'}:${name}`);
    // Perl's Set compares element names alone and would put a:00000003/00000001000000 first.
    expect(got).toEqual([
      'a:00000001/00000005000000',
      'b:00000002/00000002000000',
      'b:00000002/00000004000000',
      'a:00000003/00000001000000',
    ]);
    expect(await set.count()).toBe(4);
  });

  test('dirq set - mixes queue types; first/next walk the set and end with undefined', async () => {
    const s = new QueueSimple(join(tmp.path, 's'), { granularity: 1 });
    const n = new Queue(join(tmp.path, 'n'), { schema: { body: 'string' } });
    const x = await s.add('x');
    const y = await n.add({ body: 'y' });
    const set = new QueueSet<QueueSimple | Queue>([s], n);
    expect(set.size).toBe(2);
    const first = await set.first();
    expect(first).toEqual({ queue: n, name: y });
    expect(await set.next()).toEqual({ queue: s, name: x });
    expect(await set.next()).toBeUndefined();
    expect(await set.next()).toBeUndefined();
  });

  test('dirq set - duplicates and non-queues are refused; remove drops a queue', async () => {
    const a = new QueueSimple(join(tmp.path, 'a'));
    const again = new QueueSimple(join(tmp.path, 'a'));
    const b = new QueueSimple(join(tmp.path, 'b'));
    await b.add('b');
    expect(() => new QueueSet(a, again)).toThrow(/duplicate queue/);
    expect(() => new QueueSet({} as QueueSimple)).toThrow(InvalidOptionError);
    const set = new QueueSet(a, b);
    set.remove(a);
    expect(() => set.remove(a)).toThrow(/not in the set/);
    expect(await set.count()).toBe(1);
    set.add(a);
    expect(set.size).toBe(2);
  });

  test('dirq null - a black hole: add returns "", addPath deletes the file, the rest is unsupported', async () => {
    const q = new QueueNull();
    expect(await q.add('x')).toBe('');
    expect(await q.addMany(['a', 'b'])).toEqual(['', '']);
    const f = join(tmp.path, 'f');
    fs.writeFileSync(f, 'x');
    expect(await q.addPath(f)).toBe('');
    expect(fs.existsSync(f)).toBe(false);
    await expect(q.addPath(f)).rejects.toMatchObject({ errno: 'ENOENT' });
    expect(await q.count()).toBe(0);
    expect(await q.purge()).toEqual({ removedTemporary: 0, brokenLocks: 0, removedDirectories: 0, warnings: [] });
    const names = [];
    for await (const n of q) names.push(n);
    expect(names).toEqual([]);
    for (const m of ['lock', 'unlock', 'get', 'remove', 'touch'] as const) {
      await expect(q[m]('00000000/00000000000000')).rejects.toMatchObject({ code: 'ERR_DIRQ_UNSUPPORTED' });
    }
    expect(() => q.getPath('x')).toThrow(/unsupported method: getPath/);
  });
});
