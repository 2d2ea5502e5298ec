import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import {
  FileSystemError,
  InvalidNameError,
  InvalidOptionError,
  NoSuchElementError,
  NotLockedError,
  QueueSimple,
} from '@msgbricks/dirq';
import { backdate, layout, removeDir, tempDir, useTempDir } from '@msgbricks/test-support';

const NAME = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;

describe.each(['sync', 'async'] as const)('QueueSimple (io %s)', (io) => {
  const tmp = useTempDir('dirq-');
  let path: string;
  beforeEach(() => {
    path = join(tmp.path, 'q');
  });

  test('dirq simple - sync queues take the native binding, unless MSGBRICKS_DIRQ_NATIVE=0 (the dirq-js test project)', () => {
    const q = new QueueSimple(path, { io });
    expect(q.usesNative).toBe(io === 'sync' && process.env.MSGBRICKS_DIRQ_NATIVE !== '0');
  });

  test('dirq simple - constructor creates the queue directory and nothing else', () => {
    const q = new QueueSimple(join(path, 'a', 'b'), { io });
    expect(fs.statSync(q.path).isDirectory()).toBe(true);
    expect(layout(path)).toEqual(['a/', 'a/b/']);
    const st = fs.statSync(q.path);
    expect(q.id).toBe(`${st.dev}:${st.ino}`);
  });

  test('dirq simple - add stores the exact bytes in a time-bucket directory with a 14-hex name', async () => {
    const q = new QueueSimple(path, { io, rndhex: 7, granularity: 60 });
    const before = Math.floor(Date.now() / 1000);
    const data = Buffer.from([0, 255, 10, 13, 0]);
    const name = await q.add(data);
    const after = Math.floor(Date.now() / 1000);
    expect(name).toMatch(NAME);
    const [dir, elt] = name.split('/') as [string, string];
    const bucket = Number.parseInt(dir, 16);
    expect(bucket % 60).toBe(0);
    expect(bucket).toBeGreaterThanOrEqual(before - (before % 60));
    expect(bucket).toBeLessThanOrEqual(after);
    expect(elt.endsWith('7')).toBe(true);
    const secs = Number.parseInt(elt.slice(0, 8), 16);
    expect(secs).toBeGreaterThanOrEqual(before);
    expect(Number.parseInt(elt.slice(8, 13), 16)).toBeLessThan(1000000);
    expect(fs.readFileSync(join(path, name))).toEqual(data);
    expect(layout(path)).toEqual([`${dir}/`, name]);
  });

  test('dirq simple - text is stored as UTF-8 and an empty element is an empty file', async () => {
    const q = new QueueSimple(path, { io });
    const a = await q.add('Élément ☺\n');
    const b = await q.add('');
    const c = await q.add(new Uint8Array([1, 2, 3]));
    expect(fs.readFileSync(join(path, a))).toEqual(Buffer.from('Élément ☺\n', 'utf8'));
    expect(fs.statSync(join(path, b)).size).toBe(0);
    expect(fs.readFileSync(join(path, c))).toEqual(Buffer.from([1, 2, 3]));
  });

  test('dirq simple - add refuses a string with a lone surrogate and other data types', async () => {
    const q = new QueueSimple(path, { io });
    await expect(q.add('\ud800')).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(q.add(42 as unknown as string)).rejects.toBeInstanceOf(InvalidOptionError);
    expect(await q.count()).toBe(0);
  });

  test('dirq simple - granularity 1 gives one directory per second, 0 too', async () => {
    for (const granularity of [0, 1]) {
      const q = new QueueSimple(join(path, String(granularity)), { io, granularity });
      const t = Math.floor(Date.now() / 1000);
      const name = await q.add('x');
      expect(Number.parseInt(name.slice(0, 8), 16) - t).toBeLessThanOrEqual(1);
    }
  });

  test('dirq simple - names from one object are unique and increasing', async () => {
    const q = new QueueSimple(path, { io, rndhex: 1 });
    const names = [];
    for (let i = 0; i < 500; i++) names.push(await q.add(String(i)));
    expect(new Set(names).size).toBe(500);
    expect([...names].sort()).toEqual(names);
  });

  test('dirq simple - lock makes a hard link .lck and touches the element', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('data');
    backdate(join(path, name), 100);
    expect(await q.lock(name)).toBe(true);
    const elt = fs.statSync(join(path, name));
    const lck = fs.statSync(join(path, `${name}.lck`));
    expect(lck.ino).toBe(elt.ino);
    expect(elt.nlink).toBe(2);
    expect(Date.now() / 1000 - elt.mtimeMs / 1000).toBeLessThan(5);
    expect(q.getPath(name)).toBe(join(path, `${name}.lck`));
  });

  test('dirq simple - lock is exclusive: permissive false, strict throws EEXIST', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('data');
    expect(await q.lock(name)).toBe(true);
    expect(await q.lock(name)).toBe(false);
    await expect(q.lock(name, false)).rejects.toMatchObject({ code: 'ERR_DIRQ_SYSCALL', errno: 'EEXIST', syscall: 'link' });
  });

  test('dirq simple - lock of a missing element: permissive false, strict ENOENT', async () => {
    const q = new QueueSimple(path, { io });
    expect(await q.lock('12345678/1234567890abcd')).toBe(false);
    const err = await q.lock('12345678/1234567890abcd', false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileSystemError);
    expect(err).toMatchObject({ errno: 'ENOENT' });
    expect((err as Error).message).toContain(`cannot link(${join(path, '12345678/1234567890abcd')}`);
    expect((err as Error).cause).toBeDefined();
  });

  test('dirq simple - unlock removes the link; strict unlock of an unlocked element throws, permissive returns false', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('data');
    await q.lock(name);
    expect(await q.unlock(name)).toBe(true);
    expect(fs.existsSync(join(path, `${name}.lck`))).toBe(false);
    expect(fs.existsSync(join(path, name))).toBe(true);
    await expect(q.unlock(name)).rejects.toMatchObject({ errno: 'ENOENT', syscall: 'unlink' });
    expect(await q.unlock(name, true)).toBe(false);
  });

  test('dirq simple - get reads a locked element; unlocked or missing elements get clear errors', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add(Buffer.from('payload'));
    await expect(q.get(name)).rejects.toBeInstanceOf(NotLockedError);
    await q.lock(name);
    expect(await q.get(name)).toEqual(Buffer.from('payload'));
    await expect(q.get('12345678/1234567890abcd')).rejects.toBeInstanceOf(NoSuchElementError);
  });

  test('dirq simple - remove deletes a locked element and its lock', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('x');
    await q.lock(name);
    await q.remove(name);
    expect(layout(path)).toEqual([`${name.slice(0, 8)}/`]);
    expect(await q.count()).toBe(0);
  });

  test('dirq simple - remove refuses an unlocked element and leaves it intact (python-dirq deletes it)', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('precious');
    await expect(q.remove(name)).rejects.toBeInstanceOf(NotLockedError);
    expect(fs.readFileSync(join(path, name), 'utf8')).toBe('precious');
    await expect(q.remove('12345678/1234567890abcd')).rejects.toBeInstanceOf(NoSuchElementError);
  });

  test('dirq simple - remove works on an element locked by another object (or process)', async () => {
    const a = new QueueSimple(path, { io });
    const b = new QueueSimple(path, { io });
    const name = await a.add('x');
    await a.lock(name);
    await b.remove(name);
    expect(await a.count()).toBe(0);
  });

  test('dirq simple - names are validated: no path traversal', async () => {
    const q = new QueueSimple(path, { io });
    for (const bad of ['../../etc/passwd', '12345678/../../x', '1234567/1234567890abcd', '12345678/1234567890ABCD', '', 'a']) {
      await expect(q.lock(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.unlock(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.get(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.remove(bad)).rejects.toBeInstanceOf(InvalidNameError);
      await expect(q.touch(bad)).rejects.toBeInstanceOf(InvalidNameError);
      expect(() => q.getPath(bad)).toThrow(InvalidNameError);
    }
  });

  test('dirq simple - touch updates the element mtime (and so the lock time)', async () => {
    const q = new QueueSimple(path, { io });
    const name = await q.add('x');
    await q.lock(name);
    backdate(join(path, name), 1000);
    await q.touch(name);
    expect(Date.now() - fs.statSync(join(path, `${name}.lck`)).mtimeMs).toBeLessThan(5000);
  });

  test('dirq simple - count ignores temporary, lock and foreign files', async () => {
    const q = new QueueSimple(path, { io });
    const a = await q.add('a');
    await q.add('b');
    await q.lock(a);
    const dir = join(path, a.slice(0, 8));
    fs.writeFileSync(join(dir, '0123456789abcd.tmp'), 'partial');
    fs.writeFileSync(join(dir, 'foo.bar'), '');
    fs.writeFileSync(join(path, 'README'), '');
    fs.mkdirSync(join(path, 'zzzzzzzz'));
    expect(await q.count()).toBe(2);
  });

  test('dirq simple - count tells its progress once per intermediate directory, not per element', async () => {
    const q = new QueueSimple(path, { io });
    await q.addMany(['a', 'b', 'c']);
    // Two more buckets, as later minutes would make them.
    for (const d of ['7fffffff', '7ffffffe']) {
      fs.mkdirSync(join(path, d));
      fs.writeFileSync(join(path, d, '0123456789abcd'), 'x');
    }
    const calls: [number, number][] = [];
    expect(await q.count((done, total) => calls.push([done, total]))).toBe(5);
    expect(calls).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
  });

  test('dirq simple - iteration is sorted by directory then name, lazily per directory', async () => {
    const q = new QueueSimple(path, { io });
    const names = ['00000010/00000010000001', '00000010/00000010000002', '00000002/00000002000009', '000000ff/000000ff000000'];
    for (const n of names) {
      fs.mkdirSync(join(path, n.slice(0, 8)), { recursive: true });
      fs.writeFileSync(join(path, n), n);
    }
    fs.writeFileSync(join(path, '00000010/00000010000003.lck'), '');
    const seen: string[] = [];
    for await (const n of q) {
      seen.push(n);
      // Added to a directory not yet listed: seen in this pass.
      if (seen.length === 1) fs.writeFileSync(join(path, '000000ff/000000ff000001'), '');
    }
    expect(seen).toEqual([...names.sort(), '000000ff/000000ff000001']);
    expect(await q.first()).toBe('00000002/00000002000009');
    expect(await q.next()).toBe('00000010/00000010000001');
  });

  test('dirq simple - first/next return an empty string at the end and before first', async () => {
    const q = new QueueSimple(path, { io });
    expect(await q.next()).toBe('');
    expect(await q.first()).toBe('');
    const n = await q.add('x');
    expect(await q.first()).toBe(n);
    expect(await q.next()).toBe('');
    expect(await q.next()).toBe('');
  });

  test('dirq simple - addPath links a file in and removes it from its old path', async () => {
    const q = new QueueSimple(path, { io });
    const src = join(tmp.path, 'file');
    fs.writeFileSync(src, 'from a file');
    const name = await q.addPath(src);
    expect(fs.existsSync(src)).toBe(false);
    expect(fs.readFileSync(join(path, name), 'utf8')).toBe('from a file');
    await expect(q.addPath(join(tmp.path, 'missing'))).rejects.toMatchObject({ errno: 'ENOENT' });
  });

  test('dirq simple - addMany adds in order, with and without fsync, small and large batches', async () => {
    for (const fsync of [false, true]) {
      for (const size of [0, 3, 40]) {
        const q = new QueueSimple(join(path, `${fsync}-${size}`), { io, fsync });
        const items = Array.from({ length: size }, (_, i) => `item ${i}`);
        const names = await q.addMany(items);
        expect(names).toHaveLength(size);
        expect([...names].sort()).toEqual(names);
        for (let i = 0; i < size; i++) expect(fs.readFileSync(join(q.path, names[i] as string), 'utf8')).toBe(`item ${i}`);
        expect(layout(q.path).filter((e) => e.endsWith('.tmp'))).toEqual([]);
      }
    }
  });

  test('dirq simple - fsync add leaves a complete element and no temporary file', async () => {
    const q = new QueueSimple(path, { io, fsync: true });
    const name = await q.add(Buffer.alloc(4096, 1));
    expect(fs.readFileSync(join(path, name))).toEqual(Buffer.alloc(4096, 1));
    expect(layout(path)).toEqual([`${name.slice(0, 8)}/`, name]);
  });

  test('dirq simple - purge removes old temporary files and stale locks only', async () => {
    const q = new QueueSimple(path, { io });
    const a = await q.add('a');
    const b = await q.add('b');
    await q.lock(a);
    await q.lock(b);
    const dir = join(path, a.slice(0, 8));
    backdate(join(path, a), 1000); // the lock time is the element's mtime (same inode)
    fs.writeFileSync(join(dir, '00000000000001.tmp'), '');
    fs.writeFileSync(join(dir, '00000000000002.tmp'), '');
    backdate(join(dir, '00000000000001.tmp'), 400);
    backdate(join(dir, '00000000000002.tmp'), 100);
    const r = await q.purge();
    expect(r).toEqual({ removedTemporary: 1, brokenLocks: 1, removedDirectories: 0, warnings: [] });
    expect(fs.existsSync(join(path, `${a}.lck`))).toBe(false);
    expect(fs.existsSync(join(path, a))).toBe(true);
    expect(fs.existsSync(join(path, `${b}.lck`))).toBe(true);
    expect(fs.existsSync(join(dir, '00000000000001.tmp'))).toBe(false);
    expect(fs.existsSync(join(dir, '00000000000002.tmp'))).toBe(true);
    expect(await q.count()).toBe(2);
    expect(await q.lock(a)).toBe(true);
  });

  test('dirq simple - an element that is a symbolic link is never read nor touched through (lock, get, lockGetMany)', async () => {
    // Was: lock's utime set the target's mtime and get() returned the target's bytes (/etc/passwd in the report).
    const q = new QueueSimple(path, { io });
    const real = await q.add('real');
    const outside = join(tmp.path, 'secret');
    fs.writeFileSync(outside, 'not for the agent');
    backdate(outside, 5000);
    const before = fs.statSync(outside).mtimeMs;
    const planted = `${real.slice(0, 8)}/00000000000001`;
    fs.symlinkSync(outside, join(path, planted));
    expect(await q.lock(planted)).toBe(true);
    await expect(q.get(planted)).rejects.toMatchObject({
      errno: 'ELOOP',
      message: expect.stringMatching(/a symbolic link, never followed/),
    });
    await q.unlock(planted);
    const got = await q.lockGetMany([planted, real]);
    expect(got[0]).toBeInstanceOf(FileSystemError);
    expect((got[0] as FileSystemError).errno).toBe('ELOOP');
    expect(got[1]).toEqual(Buffer.from('real'));
    // Refused, the link is left unlocked; the target is untouched.
    expect(fs.existsSync(join(path, `${planted}.lck`))).toBe(false);
    expect(fs.readFileSync(outside, 'utf8')).toBe('not for the agent');
    expect(fs.statSync(outside).mtimeMs).toBe(before);
    // A locked link can still be removed: the link goes, never its target.
    await q.lock(planted);
    await q.remove(planted);
    expect(fs.readFileSync(outside, 'utf8')).toBe('not for the agent');
    expect(fs.statSync(outside).mtimeMs).toBe(before);
    const linkedFile = join(tmp.path, 'link-to-secret');
    fs.symlinkSync(outside, linkedFile);
    await expect(q.addPath(linkedFile)).rejects.toMatchObject({ errno: 'ELOOP' });
    expect(layout(path)).toEqual([`${real.slice(0, 8)}/`, real, `${real}.lck`]);
  });

  test('dirq simple - purge leaves what is not its own and reports it', async () => {
    const q = new QueueSimple(path, { io });
    const a = await q.add('a');
    await q.lock(a);
    backdate(join(path, a), 1000);
    const dir = join(path, a.slice(0, 8));
    // A directory with a temporary file's name (python-dirq never makes one) and a file on an intermediate name.
    fs.mkdirSync(join(dir, '00000000000001.tmp'));
    fs.writeFileSync(join(dir, '00000000000001.tmp', 'inside'), 'x');
    backdate(join(dir, '00000000000001.tmp'), 400);
    fs.writeFileSync(join(path, '00000001'), 'stray');
    const r = await q.purge();
    expect(r.brokenLocks).toBe(1);
    expect(r.warnings.map((w) => [w.path.slice(path.length + 1), w.reason]).sort()).toEqual([
      ['00000001', expect.stringMatching(/not a directory/)],
      [`${a.slice(0, 8)}/00000000000001.tmp`, expect.stringMatching(/not a file/)],
    ]);
    expect(layout(path)).toEqual([
      '00000001',
      `${a.slice(0, 8)}/`,
      `${a.slice(0, 8)}/00000000000001.tmp/`,
      `${a.slice(0, 8)}/00000000000001.tmp/inside`,
      a,
    ]);
  });

  test('dirq simple - purge with maxtemp 0 and maxlock 0 removes nothing volatile', async () => {
    const q = new QueueSimple(path, { io });
    const a = await q.add('a');
    await q.lock(a);
    backdate(join(path, a), 10000);
    const tmpFile = join(path, a.slice(0, 8), '00000000000001.tmp');
    fs.writeFileSync(tmpFile, '');
    backdate(tmpFile, 10000);
    expect(await q.purge({ maxtemp: 0, maxlock: 0 })).toEqual({
      removedTemporary: 0,
      brokenLocks: 0,
      removedDirectories: 0,
      warnings: [],
    });
    expect(fs.existsSync(tmpFile)).toBe(true);
    expect(fs.existsSync(join(path, `${a}.lck`))).toBe(true);
    await q.purge({ maxtemp: 5, maxlock: 5 });
    expect(fs.existsSync(tmpFile)).toBe(false);
    expect(fs.existsSync(join(path, `${a}.lck`))).toBe(false);
  });

  test('dirq simple - purge removes empty intermediate directories except the newest', async () => {
    const q = new QueueSimple(path, { io });
    for (const d of ['00000001', '00000002', '00000003']) fs.mkdirSync(join(path, d));
    fs.writeFileSync(join(path, '00000002', '00000002000000'), 'keep');
    const r = await q.purge();
    expect(r.removedDirectories).toBe(1);
    expect(layout(path)).toEqual(['00000002/', '00000002/00000002000000', '00000003/']);
  });

  test('dirq simple - bad options are rejected', () => {
    expect(() => new QueueSimple(path, { granularity: -1 })).toThrow(InvalidOptionError);
    expect(() => new QueueSimple(path, { granularity: 1.5 })).toThrow(InvalidOptionError);
    expect(() => new QueueSimple(path, { rndhex: 16 })).toThrow(InvalidOptionError);
    expect(() => new QueueSimple(path, { umask: 0o1000 })).toThrow(InvalidOptionError);
    expect(() => new QueueSimple(path, { io: 'fast' as 'sync' })).toThrow(InvalidOptionError);
    expect(() => new QueueSimple(path, { maxelts: 3 } as object)).toThrow(/unexpected option: maxelts/);
    expect(() => new QueueSimple('')).toThrow(InvalidOptionError);
    expect(fs.existsSync(path)).toBe(false);
  });

  test('dirq simple - a path that is a file is a clear error', () => {
    fs.writeFileSync(path, '');
    expect(() => new QueueSimple(path)).toThrow(/cannot mkdir.*ENOTDIR/);
    expect(() => new QueueSimple(join(path, 'sub'))).toThrow(/ENOTDIR/);
  });

  test('dirq simple - purge options are validated', async () => {
    const q = new QueueSimple(path, { io });
    await expect(q.purge({ maxtemp: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(q.purge({ maxage: 1 } as object)).rejects.toThrow(/unexpected option: maxage/);
  });

  test('dirq simple - umask sets file and directory modes without touching the process umask', async () => {
    const old = process.umask(0o022);
    try {
      for (const umask of [0, 0o027, 0o077]) {
        const q = new QueueSimple(join(path, String(umask)), { io, umask });
        const name = await q.add('x');
        expect(fs.statSync(join(q.path, name)).mode & 0o777).toBe(0o666 & ~umask);
        expect(fs.statSync(join(q.path, name.slice(0, 8))).mode & 0o777).toBe(0o777 & ~umask);
        expect(fs.statSync(q.path).mode & 0o777).toBe(0o777 & ~umask);
        expect(process.umask(0o022)).toBe(0o022);
      }
      const q = new QueueSimple(join(path, 'default'), { io });
      const name = await q.add('x');
      expect(fs.statSync(join(q.path, name)).mode & 0o777).toBe(0o644);
    } finally {
      process.umask(old);
    }
  });

  test('dirq simple - addMany of more elements than the open-file limit (regression: EMFILE)', () => {
    // The child runs the built library with a soft limit of 256 open files and adds 1000 per batch.
    const script = `const { QueueSimple } = require(process.argv[1]);
      (async () => {
        for (const fsync of [false, true]) {
          const q = new QueueSimple(process.argv[2] + '/' + fsync, { fsync, io: process.argv[3] });
          const names = await q.addMany(Array.from({ length: 1000 }, (_, i) => String(i)));
          console.log(names.length, await q.count());
        }
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    const dist = resolve(__dirname, '../dist/index.js');
    const r = spawnSync('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, '-e', script, dist, path, io], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1000 1000\n1000 1000\n');
  });
});

test('dirq simple - a small fsync batch takes one syncfs in memory (tmpfs), concurrent fdatasyncs on a disk', async () => {
  const TMPFS = 0x01021994;
  const tmp = tempDir();
  try {
    for (const parent of ['/dev/shm', tmp]) {
      if (!fs.existsSync(parent)) continue;
      const dir = fs.mkdtempSync(join(parent, 'dirq-small-'));
      try {
        const q = new QueueSimple(join(dir, 'q'), { fsync: true });
        const inner = q as unknown as { nat?: Record<string, unknown> };
        const nat = inner.nat;
        if (nat === undefined) {
          // The dirq-js project: no binding, the JavaScript path always.
          expect(process.env.MSGBRICKS_DIRQ_NATIVE).toBe('0');
          continue;
        }
        // The binding's exports are read-only: count its syncfs calls through a proxy.
        let syncfs = 0;
        inner.nat = new Proxy(nat, {
          get: (t, k) => {
            if (k === 'syncfs') syncfs++;
            return t[k as string];
          },
        });
        expect(await q.addMany(['a', 'b', 'c'])).toHaveLength(3);
        const inMemory = Number(fs.statfsSync(dir).type) === TMPFS;
        expect([parent, syncfs]).toEqual([parent, inMemory ? 1 : 0]);
        expect(await q.count()).toBe(3);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    removeDir(tmp);
  }
});
