import * as fs from 'node:fs';
import { join } from 'node:path';
import {
  DataError,
  InvalidNameError,
  InvalidOptionError,
  NoSuchElementError,
  NotLockedError,
  parseSchema,
  Queue,
} from '@msgbricks/dirq';
import { backdate, layout, useTempDir } from '@msgbricks/test-support';

const SCHEMA = { body: 'string', bin: 'binary?', header: 'table?' };

describe.each(['sync', 'async'] as const)('Queue (io %s)', (io) => {
  const tmp = useTempDir('dirq-');
  let path: string;
  beforeEach(() => {
    path = join(tmp.path, 'q');
  });

  test('dirq normal - constructor creates temporary/ and obsolete/', () => {
    new Queue(path, { io });
    expect(layout(path)).toEqual(['obsolete/', 'temporary/']);
  });

  test('dirq normal - add writes one file per field, renamed into 00000000/', async () => {
    const q = new Queue(path, { io, schema: SCHEMA, rndhex: 5 });
    const name = await q.add({ body: 'Élément ☺', bin: Buffer.from([0, 255]), header: { b: 'x\ty', a: '1\\2\n3', '': '' } });
    expect(name).toMatch(/^00000000\/[0-9a-f]{13}5$/);
    expect(layout(path)).toEqual([
      '00000000/',
      `${name}/`,
      `${name}/bin`,
      `${name}/body`,
      `${name}/header`,
      'obsolete/',
      'temporary/',
    ]);
    expect(fs.readFileSync(join(path, name, 'body'))).toEqual(Buffer.from('Élément ☺'));
    expect(fs.readFileSync(join(path, name, 'bin'))).toEqual(Buffer.from([0, 255]));
    expect(fs.readFileSync(join(path, name, 'header'), 'utf8')).toBe('\t\na\t1\\\\2\\n3\nb\tx\\ty\n');
  });

  test('dirq normal - optional fields may be absent; an empty table is an empty file', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const a = await q.add({ body: '' });
    const b = await q.add({ body: 'x', header: {} });
    expect(layout(join(path, a))).toEqual(['body']);
    expect(fs.statSync(join(path, b, 'header')).size).toBe(0);
    await q.lock(a);
    await q.lock(b);
    expect(await q.get(a)).toEqual({ body: '' });
    expect(await q.get(b)).toEqual({ body: 'x', header: {} });
  });

  test('dirq normal - bad data is refused before anything is written', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    await expect(q.add({ bin: Buffer.from('x') })).rejects.toThrow(/missing mandatory data: body/);
    await expect(q.add({ body: 'x', other: 'y' })).rejects.toThrow(/unexpected data: other/);
    await expect(q.add({ body: Buffer.from('x') })).rejects.toBeInstanceOf(DataError);
    await expect(q.add({ body: 'x', bin: 'text' })).rejects.toBeInstanceOf(DataError);
    await expect(q.add({ body: 'x', header: { a: 1 as unknown as string } })).rejects.toBeInstanceOf(DataError);
    await expect(q.add({ body: 'x', header: 'a' })).rejects.toBeInstanceOf(DataError);
    await expect(q.add({ body: '\udc00' })).rejects.toBeInstanceOf(DataError);
    await expect(q.add(null as unknown as Record<string, string>)).rejects.toBeInstanceOf(DataError);
    expect(layout(path)).toEqual(['obsolete/', 'temporary/']);
  });

  test('dirq normal - add and get need a schema', async () => {
    const q = new Queue(path, { io });
    await expect(q.add({ body: 'x' })).rejects.toMatchObject({ code: 'ERR_DIRQ_NO_SCHEMA' });
    await expect(q.get('00000000/00000000000000')).rejects.toMatchObject({ code: 'ERR_DIRQ_NO_SCHEMA' });
  });

  test('dirq normal - lock is mkdir locked/, updates the element mtime, and is exclusive', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'x' });
    backdate(join(path, name), 100);
    expect(await q.lock(name)).toBe(true);
    expect(fs.statSync(join(path, name, 'locked')).isDirectory()).toBe(true);
    expect(Date.now() - fs.statSync(join(path, name)).mtimeMs).toBeLessThan(5000);
    expect(await q.lock(name)).toBe(false);
    await expect(q.lock(name, false)).rejects.toMatchObject({ errno: 'EEXIST', syscall: 'mkdir' });
    expect(await q.lock('00000000/00000000000000')).toBe(false);
    await expect(q.lock('00000000/00000000000000', false)).rejects.toMatchObject({ errno: 'ENOENT' });
  });

  test('dirq normal - unlock: strict throws on an unlocked element, permissive returns false', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'x' });
    await q.lock(name);
    expect(await q.unlock(name)).toBe(true);
    expect(layout(join(path, name))).toEqual(['body']);
    await expect(q.unlock(name)).rejects.toMatchObject({ errno: 'ENOENT', syscall: 'rmdir' });
    expect(await q.unlock(name, true)).toBe(false);
  });

  test('dirq normal - get needs the lock and returns typed fields', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'text', bin: Buffer.from([1, 2, 0]), header: { k: 'v' } });
    await expect(q.get(name)).rejects.toBeInstanceOf(NotLockedError);
    await q.lock(name);
    const data = await q.get(name);
    expect(data).toEqual({ body: 'text', bin: Buffer.from([1, 2, 0]), header: { k: 'v' } });
    expect(Buffer.isBuffer(data.bin)).toBe(true);
    expect(q.getPath(name)).toBe(join(path, name));
    await expect(q.get('00000000/00000000000000')).rejects.toBeInstanceOf(NoSuchElementError);
  });

  test('dirq normal - a missing mandatory file or invalid UTF-8 is a DataError', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'x', header: { a: 'b' } });
    await q.lock(name);
    fs.writeFileSync(join(path, name, 'header'), 'no tab here\n');
    await expect(q.get(name)).rejects.toThrow(/unexpected hash line/);
    fs.writeFileSync(join(path, name, 'body'), Buffer.from([0xff, 0xfe]));
    await expect(q.get(name)).rejects.toThrow(/invalid UTF-8/);
    fs.unlinkSync(join(path, name, 'body'));
    await expect(q.get(name)).rejects.toThrow(/missing data file/);
  });

  test('dirq normal - remove goes through obsolete/ and leaves nothing behind', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'x', bin: Buffer.from('y'), header: {} });
    await expect(q.remove(name)).rejects.toBeInstanceOf(NotLockedError);
    expect(fs.existsSync(join(path, name, 'body'))).toBe(true);
    await q.lock(name);
    await q.remove(name);
    expect(layout(path)).toEqual(['00000000/', 'obsolete/', 'temporary/']);
    await expect(q.remove(name)).rejects.toBeInstanceOf(NoSuchElementError);
  });

  test('dirq normal - remove takes the whole element, whatever it holds (an unexpected file, a sub-directory, a link)', async () => {
    // Was: the element was moved into obsolete/, then remove threw (EISDIR, "unexpected file") and left it there
    // for the purge to die on.
    const q = new Queue(path, { io, schema: SCHEMA });
    const name = await q.add({ body: 'x' });
    await q.lock(name);
    const outside = join(tmp.path, 'outside');
    fs.writeFileSync(outside, 'keep');
    fs.writeFileSync(join(path, name, 'bad.name'), '');
    fs.mkdirSync(join(path, name, 'sub'));
    fs.writeFileSync(join(path, name, 'sub', 'x'), '');
    fs.symlinkSync(outside, join(path, name, 'link'));
    await q.remove(name);
    expect(layout(path)).toEqual(['00000000/', 'obsolete/', 'temporary/']);
    expect(fs.readFileSync(outside, 'utf8')).toBe('keep');
  });

  test('dirq normal - maxelts rolls over to the next counter directory', async () => {
    const q = new Queue(path, { io, schema: SCHEMA, maxelts: 2 });
    const names = [];
    for (let i = 0; i < 5; i++) names.push(await q.add({ body: String(i) }));
    expect(names.map((n) => n.slice(0, 8))).toEqual(['00000000', '00000000', '00000001', '00000001', '00000002']);
    expect(await q.count()).toBe(5);
    const seen = [];
    for await (const n of q) seen.push(n);
    expect(seen).toEqual(names);
  });

  test('dirq normal - count ignores temporary/ and obsolete/ (python-dirq counts them)', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    await q.add({ body: 'a' });
    await q.add({ body: 'b' });
    fs.mkdirSync(join(path, 'temporary', '0123456789abcd'));
    fs.mkdirSync(join(path, 'obsolete', '0123456789abce'));
    fs.writeFileSync(join(path, 'junk'), '');
    expect(await q.count()).toBe(2);
  });

  test('dirq normal - count steps over a stray file with a counter directory name, hard-linked or not, and records it', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    await q.add({ body: 'a' });
    fs.writeFileSync(join(path, '12345678'), 'stray');
    // Two links: a file's nlink of 2 must not read as "no sub-directory" (nlink - 2), nor a larger one as elements.
    fs.writeFileSync(join(path, '0000000f'), 'stray');
    fs.linkSync(join(path, '0000000f'), join(tmp.path, 'other-link'));
    fs.linkSync(join(path, '0000000f'), join(tmp.path, 'third-link'));
    expect(await q.count()).toBe(1);
    expect([...q.strays].sort()).toEqual([join(path, '0000000f'), join(path, '12345678')]);
    expect(fs.readFileSync(join(path, '12345678'), 'utf8')).toBe('stray');
  });
  test('dirq normal - purge removes stale temporary/obsolete elements, breaks stale locks, drops empty directories', async () => {
    const q = new Queue(path, { io, schema: SCHEMA, maxelts: 1 });
    const a = await q.add({ body: 'a' });
    const b = await q.add({ body: 'b' });
    const c = await q.add({ body: 'c' });
    await q.lock(a);
    await q.remove(a); // 00000000 is now empty
    await q.lock(b);
    await q.lock(c);
    backdate(join(path, b), 1000);
    for (const [sub, age] of [
      ['temporary/0123456789abc1', 400],
      ['temporary/0123456789abc2', 100],
      ['obsolete/0123456789abc3', 400],
    ] as const) {
      fs.mkdirSync(join(path, sub));
      fs.writeFileSync(join(path, sub, 'body'), '');
      fs.mkdirSync(join(path, sub, 'locked'));
      backdate(join(path, sub), age);
    }
    const r = await q.purge();
    expect(r).toEqual({ removedTemporary: 2, brokenLocks: 1, removedDirectories: 1, warnings: [] });
    expect(layout(path)).toEqual([
      '00000001/',
      `${b}/`,
      `${b}/body`,
      '00000002/',
      `${c}/`,
      `${c}/body`,
      `${c}/locked/`,
      'obsolete/',
      'temporary/',
      'temporary/0123456789abc2/',
      'temporary/0123456789abc2/body',
      'temporary/0123456789abc2/locked/',
    ]);
  });

  test('dirq normal - purge removes a stale temporary element with a sub-directory and reports what it leaves', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const a = await q.add({ body: 'a' });
    await q.lock(a);
    backdate(join(path, a), 1000);
    // What an adder killed mid-way, or a hand, can leave: a sub-directory in an element (rm -r'd: ours), a file
    // where an element directory should be, a name that is no element (neither is ours: left in place).
    const owned = join(path, 'temporary', '0123456789abc1');
    fs.mkdirSync(join(owned, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(join(owned, 'body'), 'x');
    fs.writeFileSync(join(owned, 'sub', 'deeper', 'file'), 'x');
    backdate(owned, 400);
    fs.writeFileSync(join(path, 'obsolete', '0123456789abc2'), 'not a directory');
    backdate(join(path, 'obsolete', '0123456789abc2'), 400);
    fs.writeFileSync(join(path, 'temporary', 'notes.txt'), 'not ours');
    // An intermediate directory's name on a regular file.
    fs.writeFileSync(join(path, '12345678'), 'stray');
    const r = await q.purge();
    expect(r.removedTemporary).toBe(1);
    expect(r.brokenLocks).toBe(1);
    expect(r.warnings.map((w) => [w.path.slice(path.length + 1), w.reason]).sort()).toEqual([
      ['12345678', expect.stringMatching(/not a directory/)],
      ['obsolete/0123456789abc2', expect.stringMatching(/not a directory/)],
      ['temporary/notes.txt', expect.stringMatching(/not an element/)],
    ]);
    expect(layout(path)).toEqual([
      '00000000/',
      `${a}/`,
      `${a}/body`,
      '12345678',
      'obsolete/',
      'obsolete/0123456789abc2',
      'temporary/',
      'temporary/notes.txt',
    ]);
  });

  test('dirq normal - purge goes on when temporary/ and obsolete/ are not directories', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const a = await q.add({ body: 'a' });
    await q.lock(a);
    backdate(join(path, a), 1000);
    for (const sub of ['temporary', 'obsolete']) {
      fs.rmdirSync(join(path, sub));
      fs.writeFileSync(join(path, sub), 'stray');
    }
    const r = await q.purge();
    expect(r.brokenLocks).toBe(1);
    expect(r.warnings.map((w) => [w.path.slice(path.length + 1), w.errno])).toEqual([
      ['temporary', 'ENOTDIR'],
      ['obsolete', 'ENOTDIR'],
    ]);
    expect(fs.readFileSync(join(path, 'temporary'), 'utf8')).toBe('stray');
  });

  test('dirq normal - a symbolic link as an element or a field is refused, its target never read nor touched', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    const outsideDir = join(tmp.path, 'elsewhere');
    fs.mkdirSync(outsideDir);
    fs.writeFileSync(join(outsideDir, 'body'), 'not for the agent');
    const real = await q.add({ body: 'x' });
    const planted = '00000000/00000000000001';
    fs.symlinkSync(outsideDir, join(path, planted));
    await expect(q.lock(planted)).rejects.toMatchObject({ errno: 'ELOOP' });
    expect(fs.readdirSync(outsideDir)).toEqual(['body']);
    await expect(q.get(planted)).rejects.toMatchObject({ errno: 'ELOOP' });
    // A field file that is a link: O_NOFOLLOW.
    fs.unlinkSync(join(path, real, 'body'));
    fs.symlinkSync(join(outsideDir, 'body'), join(path, real, 'body'));
    await q.lock(real);
    await expect(q.get(real)).rejects.toMatchObject({ errno: 'ELOOP' });
    expect(fs.readFileSync(join(outsideDir, 'body'), 'utf8')).toBe('not for the agent');
  });

  test('dirq normal - schemas are validated, every problem at once', () => {
    expect(() => parseSchema({})).toThrow(/no mandatory data/);
    expect(() => parseSchema({ a: 'string?' })).toThrow(/no mandatory data/);
    expect(() => parseSchema({ 'a-b': 'string', c: 'number' })).toThrow(
      /invalid schema name: "a-b"; invalid schema type for "c"/,
    );
    expect(() => parseSchema({ locked: 'string' })).toThrow(/reserved/);
    expect(() => parseSchema([])).toThrow(InvalidOptionError);
    expect(parseSchema({ a: 'binary*', b: 'string?*', c: 'table*?' })).toEqual([
      { name: 'a', type: 'binary', optional: false },
      { name: 'b', type: 'string', optional: true },
      { name: 'c', type: 'table', optional: true },
    ]);
    expect(() => new Queue(path, { schema: { x: 'y' } })).toThrow(InvalidOptionError);
    expect(() => new Queue(path, { maxelts: 0 })).toThrow(InvalidOptionError);
    expect(fs.existsSync(path)).toBe(false);
  });

  test('dirq normal - names are validated', async () => {
    const q = new Queue(path, { io, schema: SCHEMA });
    for (const bad of ['temporary/0123456789abcd', '../x/0123456789abcd', '00000000/0123456789abcd/..']) {
      await expect(q.lock(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.remove(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.get(bad)).rejects.toBeInstanceOf(InvalidNameError);
    }
  });

  test('dirq normal - umask applies to element directories and files', async () => {
    const old = process.umask(0o022);
    try {
      const q = new Queue(path, { io, schema: SCHEMA, umask: 0 });
      const name = await q.add({ body: 'x' });
      await q.lock(name);
      expect(fs.statSync(join(path, name, 'body')).mode & 0o777).toBe(0o666);
      expect(fs.statSync(join(path, name)).mode & 0o777).toBe(0o777);
      expect(fs.statSync(join(path, name, 'locked')).mode & 0o777).toBe(0o777);
      expect(fs.statSync(join(path, 'temporary')).mode & 0o777).toBe(0o777);
    } finally {
      process.umask(old);
    }
  });

  test('dirq normal - fsync add produces the same layout', async () => {
    const q = new Queue(path, { io, schema: SCHEMA, fsync: true });
    const name = await q.add({ body: 'durable' });
    expect(fs.readFileSync(join(path, name, 'body'), 'utf8')).toBe('durable');
    expect(layout(join(path, 'temporary'))).toEqual([]);
  });
});
