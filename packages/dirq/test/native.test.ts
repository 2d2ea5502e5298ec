import * as fs from 'node:fs';
import { join } from 'node:path';
import { QueueSimple } from '@msgbricks/dirq';
import { layout, removeDir, tempDir } from '@msgbricks/test-support';
import { failure, native, nativeError, nativeStatus } from '../src/native';

const buildFailure = join(__dirname, '..', 'build', 'build-failure.txt');

describe('dirq native', () => {
  const tmp = tempDir('dirq-');
  afterAll(() => removeDir(tmp));

  test('dirq native - the binding is built and in use on Linux', () => {
    const q = new QueueSimple(join(tmp, 'status'));
    // Not a skip: without a C compiler the build says why, and this fails with that reason.
    const why = fs.existsSync(buildFailure) ? fs.readFileSync(buildFailure, 'utf8').trim() : nativeStatus().reason;
    expect({ loaded: nativeStatus().loaded, why }).toEqual({ loaded: true, why: undefined });
    expect(q.usesNative).toBe(true);
    expect(new QueueSimple(join(tmp, 'status'), { native: false }).usesNative).toBe(false);
    expect(new QueueSimple(join(tmp, 'status'), { io: 'async' }).usesNative).toBe(false);
    expect(() => new QueueSimple(join(tmp, 'status'), { native: 'yes' as never })).toThrow(/invalid native/);
  });

  describe('dirq native - binding', () => {
    const n = native as NonNullable<typeof native>;
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(join(tmp, 'b-'));
    });

    test('dirq native - writeNew publishes without replacing: EEXIST leaves the temporary file for another name', () => {
      fs.writeFileSync(join(dir, 'taken'), 'old');
      const r = n.writeNew(join(dir, 'a.tmp'), join(dir, 'taken'), Buffer.from('new'), 0o644, false, false);
      expect(failure(r)).toEqual({ stage: 6, errno: 'EEXIST' });
      expect(fs.readFileSync(join(dir, 'taken'), 'utf8')).toBe('old');
      expect(fs.readFileSync(join(dir, 'a.tmp'), 'utf8')).toBe('new');
      expect(n.publish(join(dir, 'a.tmp'), join(dir, 'free'))).toBe(0);
      expect(layout(dir)).toEqual(['free', 'taken']);
      expect(fs.readFileSync(join(dir, 'free'), 'utf8')).toBe('new');
    });

    test('dirq native - writeNew and writeTemp leave nothing behind when the write cannot be made', () => {
      const r = n.writeNew(join(dir, 'missing', 'a.tmp'), join(dir, 'x'), Buffer.from('x'), 0o644, false, true);
      expect(failure(r)).toEqual({ stage: 1, errno: 'ENOENT' });
      fs.writeFileSync(join(dir, 'b.tmp'), '');
      expect(failure(n.writeTemp(join(dir, 'b.tmp'), Buffer.from('x'), 0o644, false, false))).toEqual({
        stage: 1,
        errno: 'EEXIST',
      });
      expect(layout(dir)).toEqual(['b.tmp']);
    });

    test('dirq native - mode: fchmod on request gives the exact mode whatever the process umask', () => {
      expect(n.writeTemp(join(dir, 'm.tmp'), Buffer.alloc(0), 0o666, true, true)).toBe(0);
      expect(fs.statSync(join(dir, 'm.tmp')).mode & 0o777).toBe(0o666);
    });

    test('dirq native - lock, read, remove: the python-dirq sequence, and failures by stage', () => {
      const p = join(dir, 'e');
      fs.writeFileSync(p, Buffer.from([0, 255, 1]));
      fs.utimesSync(p, 1000, 1000);
      const [got, missing] = n.lockReadMany([p, join(dir, 'nope')]);
      expect(got).toEqual(Buffer.from([0, 255, 1]));
      expect(fs.statSync(p).nlink).toBe(2);
      expect(fs.statSync(p).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      expect(failure(missing as number)).toEqual({ stage: 7, errno: 'ENOENT' });
      expect(failure(n.lock(p))).toEqual({ stage: 7, errno: 'EEXIST' });
      expect(n.readFile(`${p}.lck`)).toEqual(Buffer.from([0, 255, 1]));
      expect(Array.from(n.unlockedMany([p, join(dir, 'nope')]))).toEqual([0, 1]);
      expect(Array.from(n.removeMany([p, join(dir, 'nope')], Uint8Array.from([1, 1])))).toEqual([
        0,
        n.remove(join(dir, 'nope'), true),
      ]);
      expect(failure(n.remove(join(dir, 'nope'), true))).toEqual({ stage: 11, errno: 'ENOENT' });
      expect(layout(dir)).toEqual([]);
    });

    test('dirq native - a big element is read whole', () => {
      const big = Buffer.alloc(1 << 20, 7);
      fs.writeFileSync(join(dir, 'big'), big);
      expect(n.readFile(join(dir, 'big'))).toEqual(big);
    });

    test('dirq native - syncfs and fsync', () => {
      expect(n.syncfs(dir)).toBe(0);
      expect(n.fsync(dir)).toBe(0);
      expect(failure(n.fsync(join(dir, 'nope')))).toEqual({ stage: 1, errno: 'ENOENT' });
    });

    test('dirq native - failures become the FileSystemError of the JavaScript path', () => {
      const err = nativeError(n.lock(join(dir, 'nope')), join(dir, 'nope'), join(dir, 'nope.lck'));
      expect(err).toMatchObject({ code: 'ERR_DIRQ_SYSCALL', errno: 'ENOENT', syscall: 'link', path: join(dir, 'nope') });
      expect(err.message).toBe(`cannot link(${join(dir, 'nope')}, ${join(dir, 'nope.lck')}): ENOENT: no such file or directory`);
      expect(err.cause).toBeInstanceOf(Error);
    });

    test('dirq native - bad arguments throw', () => {
      expect(() => n.lock(42 as never)).toThrow(/bad arguments/);
      expect(() => n.writeTemp(join(dir, 'x.tmp'), 'not a buffer' as never, 0o644, false, false)).toThrow(/bad arguments/);
      expect(() => n.lock('x'.repeat(5000))).toThrow(/bad arguments/);
    });
  });
});
