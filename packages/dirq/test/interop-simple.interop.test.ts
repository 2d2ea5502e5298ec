// Interoperability of QueueSimple with the real python-dirq 1.8 (Debian python3-dirq), spec §8 cases 1-10 and 13.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileSystemError, NotLockedError, Queue, QueueSimple } from '@msgbricks/dirq';
import { interopFixture, NAME_FORMAT, PyServer, py, pyProcess, sha256, sleep, tree } from './helpers/python';

jest.setTimeout(60_000);

const tmp = interopFixture();

async function names(q: QueueSimple | Queue): Promise<string[]> {
  const out: string[] = [];
  for await (const n of q) out.push(n);
  return out;
}

async function firstNext(q: QueueSimple | Queue): Promise<string[]> {
  const out: string[] = [];
  for (let n = await q.first(); n !== ''; n = await q.next()) out.push(n);
  return out;
}

const mode = (p: string): number => fs.statSync(p).mode & 0o7777;

describe('dirq interop - QueueSimple', () => {
  // Case 1
  test('dirq interop - python adds 1000 binary elements, we read them in python order with identical bytes', async () => {
    const qpath = path.join(tmp(), 'q');
    const r = py<{ added: [string, string, number][]; order: string[] }>(
      `
import random
rnd = random.Random(args['seed'])
q = QueueSimple(args['path'], granularity=1)
special = [b'', b'\\x00' * 17, b'\\xff' * 300, b'a\\r\\nb\\rc\\n', bytes(range(256)), b'\\x00\\xff\\r\\n' * 1000]
added = []
for i in range(1000):
    data = special[i] if i < len(special) else rnd.randbytes(rnd.randint(0, 65536))
    added.append([q.add(data), sha(data), len(data)])
    time.sleep(0.0022)
result = {'added': added, 'order': list(q)}
`,
      { path: qpath, seed: 42 },
    );
    expect(r.added).toHaveLength(1000);
    expect(r.added.filter((a) => a[2] === 0)).toHaveLength(1);
    const dirs = new Set(r.added.map((a) => a[0].slice(0, 8)));
    expect(dirs.size).toBeGreaterThanOrEqual(2); // spread over at least two one-second buckets
    for (const [n] of r.added) expect(n).toMatch(NAME_FORMAT);

    const q = new QueueSimple(qpath, { granularity: 1 });
    expect(await q.count()).toBe(1000);
    const ours = await names(q);
    expect(ours).toEqual(r.order);
    expect(await firstNext(q)).toEqual(r.order);
    expect([...r.order].sort()).toEqual(r.order); // python's order is (dir, name) order

    const want = new Map(r.added.map(([n, h, len]) => [n, { h, len }]));
    for (const n of ours) {
      expect(await q.lock(n)).toBe(true);
      const data = await q.get(n);
      expect({ h: sha256(data), len: data.length }).toEqual(want.get(n));
      await q.remove(n);
    }
    expect(py<number>('result = QueueSimple(args).count()', qpath)).toBe(0);
    await q.purge();
    expect(fs.readdirSync(qpath)).toEqual([[...dirs].sort().at(-1)]);
  });

  // Case 2
  test('dirq interop - we add 1000 elements (name format, time bucket, rndhex), python locks, gets and removes them', async () => {
    const qpath = path.join(tmp(), 'q');
    const g = 2;
    const q = new QueueSimple(qpath, { granularity: g, rndhex: 7 });
    const sent = new Map<string, string>();
    for (let i = 0; i < 1000; i++) {
      const data = i === 0 ? Buffer.alloc(0) : randomBytes(Math.floor(Math.random() * 4096));
      const before = Math.floor(Date.now() / 1000);
      const n = await q.add(data);
      const after = Math.floor(Date.now() / 1000);
      expect(n).toMatch(NAME_FORMAT);
      const d = Number.parseInt(n.slice(0, 8), 16);
      expect(d % g).toBe(0);
      expect(d).toBeGreaterThanOrEqual(Math.floor(before / g) * g);
      expect(d).toBeLessThanOrEqual(Math.floor(after / g) * g);
      expect(Number.parseInt(n.slice(9, 17), 16)).toBeGreaterThanOrEqual(d); // element time is not before its bucket
      expect(n.at(-1)).toBe('7');
      sent.set(n, sha256(data));
      if (i % 250 === 0) await sleep(600);
    }
    expect(tree(qpath).filter((p) => p.endsWith('.tmp'))).toEqual([]);
    const r = py<{ got: [string, string][]; count: number }>(
      `
q = QueueSimple(args, granularity=2)
got = []
for n in q:
    assert q.lock(n), n
    got.append([n, sha(q.get(n))])
    q.remove(n)
result = {'got': got, 'count': q.count()}
`,
      qpath,
    );
    expect(r.got.map((x) => x[0])).toEqual([...sent.keys()].sort());
    expect(new Map(r.got)).toEqual(sent);
    expect(r.count).toBe(0);
    expect(await q.count()).toBe(0);
    expect(tree(qpath).filter((p) => !p.endsWith('/'))).toEqual([]);
  });

  // Case 3
  test('dirq interop - text payloads are stored as UTF-8 both ways', async () => {
    const qpath = path.join(tmp(), 'q');
    const text = 'Élément ☺\n';
    const utf8 = Buffer.from(text, 'utf8');
    const pn = py<string>('result = QueueSimple(args).add(%s)'.replace('%s', JSON.stringify(text)), qpath);
    const q = new QueueSimple(qpath);
    expect(fs.readFileSync(path.join(qpath, pn))).toEqual(utf8);
    expect(await q.lock(pn)).toBe(true);
    expect(await q.get(pn)).toEqual(utf8);
    await q.remove(pn);

    const tn = await q.add(text);
    expect(fs.readFileSync(path.join(qpath, tn))).toEqual(utf8);
    const r = py<{ b: string; s: string }>(
      `
q = QueueSimple(args['path'])
assert q.lock(args['name'])
b = q.get(args['name'])
q.remove(args['name'])
result = {'b': b64(b), 's': b.decode('utf-8')}
`,
      { path: qpath, name: tn },
    );
    expect(Buffer.from(r.b, 'base64')).toEqual(utf8);
    expect(r.s).toBe(text);
  });

  // Case 4
  test('dirq interop - a lock taken by one implementation excludes the other; unlock of an unlocked element fails with ENOENT', async () => {
    const qpath = path.join(tmp(), 'q');
    const q = new QueueSimple(qpath);
    // python locks, we cannot
    const pe = py<string>("q = QueueSimple(args)\nresult = q.add(b'py')\nassert q.lock(result)", qpath);
    expect(await q.lock(pe)).toBe(false);
    await expect(q.lock(pe, false)).rejects.toMatchObject({ errno: 'EEXIST' });
    expect(q.getPath(pe)).toBe(`${qpath}/${pe}.lck`);
    // we lock, python cannot
    const te = await q.add('ts');
    expect(await q.lock(te)).toBe(true);
    const r = py<Record<string, unknown>>(
      `
q = QueueSimple(args['path'])
result = {'permissive': q.lock(args['name']), 'path': q.get_path(args['name'])}
try:
    q.lock(args['name'], False)
    result['strict'] = 'no error'
except OSError as e:
    result['strict'] = errname(e)
`,
      { path: qpath, name: te },
    );
    expect(r).toEqual({ permissive: false, path: `${qpath}/${te}.lck`, strict: 'EEXIST' });

    // unlock of an unlocked element, both sides
    const free = await q.add('free');
    await expect(q.unlock(free)).rejects.toBeInstanceOf(FileSystemError);
    await expect(q.unlock(free)).rejects.toMatchObject({ errno: 'ENOENT' });
    expect(await q.unlock(free, true)).toBe(false);
    const pu = py<Record<string, unknown>>(
      `
q = QueueSimple(args['path'])
result = {'permissive': q.unlock(args['name'], True)}
try:
    q.unlock(args['name'])
    result['strict'] = 'no error'
except OSError as e:
    result['strict'] = errname(e)
`,
      { path: qpath, name: free },
    );
    expect(pu).toEqual({ permissive: false, strict: 'ENOENT' });

    // our remove() refuses an unlocked element and leaves it intact ...
    await expect(q.remove(free)).rejects.toBeInstanceOf(NotLockedError);
    expect(fs.readFileSync(path.join(qpath, free), 'utf8')).toBe('free');
    expect(
      py<string>("q = QueueSimple(args['path'])\nassert q.lock(args['name'])\nresult = q.get(args['name']).decode()", {
        path: qpath,
        name: free,
      }),
    ).toBe('free');
    // ... whereas python's remove() of an unlocked element deletes the data, then raises (python-dirq weakness)
    const victim = await q.add('victim');
    const pr = py<Record<string, unknown>>(
      `
q = QueueSimple(args['path'])
try:
    q.remove(args['name'])
    result = {'error': None}
except OSError as e:
    result = {'error': errname(e)}
result['exists'] = os.path.exists(os.path.join(args['path'], args['name']))
`,
      { path: qpath, name: victim },
    );
    expect(pr).toEqual({ error: 'ENOENT', exists: false });
  });

  // Case 5
  test('dirq interop - a lock is a hard link sharing the inode (nlink 2) with a fresh mtime, understood by both sides', async () => {
    const qpath = path.join(tmp(), 'q');
    const q = new QueueSimple(qpath);
    const old = Date.now() / 1000 - 100;
    const check = (n: string): void => {
      const e = fs.statSync(path.join(qpath, n));
      const l = fs.statSync(path.join(qpath, `${n}.lck`));
      expect(l.ino).toBe(e.ino);
      expect(e.nlink).toBe(2);
      expect(Math.abs(e.mtimeMs / 1000 - Date.now() / 1000)).toBeLessThan(10);
    };
    // we lock, python gets and removes
    const te = await q.add(Buffer.from([0, 1, 2, 255]));
    fs.utimesSync(path.join(qpath, te), old, old);
    expect(await q.lock(te)).toBe(true);
    check(te);
    const r = py<string>("q = QueueSimple(args['path'])\nresult = b64(q.get(args['name']))\nq.remove(args['name'])", {
      path: qpath,
      name: te,
    });
    expect(Buffer.from(r, 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(fs.existsSync(path.join(qpath, te))).toBe(false);
    expect(fs.existsSync(path.join(qpath, `${te}.lck`))).toBe(false);
    // python locks, we see the same facts, then get and remove
    const pe = py<string>("result = QueueSimple(args).add(b'\\x00python')", qpath);
    fs.utimesSync(path.join(qpath, pe), old, old);
    py("assert QueueSimple(args['path']).lock(args['name'])", { path: qpath, name: pe });
    check(pe);
    expect(await q.get(pe)).toEqual(Buffer.from('\0python'));
    await q.remove(pe);
    expect(await q.count()).toBe(0);
    expect(tree(qpath).filter((p) => !p.endsWith('/'))).toEqual([]);
  });

  // Case 6
  test('dirq interop - stale python locks are broken by our purge; touch and maxlock=0 keep them', async () => {
    const qpath = path.join(tmp(), 'q');
    const q = new QueueSimple(qpath);
    const e = py<string>("q = QueueSimple(args)\nresult = q.add(b'stale')\nassert q.lock(result)", qpath);
    const lck = path.join(qpath, `${e}.lck`);
    const backdate = (): void => {
      const t = Date.now() / 1000 - 1000;
      fs.utimesSync(lck, t, t);
    };
    backdate();
    await q.purge({ maxlock: 0 });
    expect(fs.existsSync(lck)).toBe(true);
    await q.touch(e); // within maxlock again
    await q.purge();
    expect(fs.existsSync(lck)).toBe(true);
    backdate();
    const res = await q.purge();
    expect(res.brokenLocks).toBe(1);
    expect(fs.existsSync(lck)).toBe(false);
    expect(await q.count()).toBe(1);
    expect(await q.lock(e)).toBe(true);
    // and python's purge breaks a stale lock of ours the same way
    backdate();
    const r = py<Record<string, unknown>>(
      `
import io, contextlib
q = QueueSimple(args['path'])
err = io.StringIO()
with contextlib.redirect_stderr(err):
    q.purge()
result = {'lck': os.path.exists(args['lck']), 'count': q.count(), 'relock': q.lock(args['name'])}
`,
      { path: qpath, name: e, lck },
    );
    expect(r).toEqual({ lck: false, count: 1, relock: true }); // lck is checked before the re-lock
  });

  // Case 7
  test('dirq interop - stale temporary files: our purge and python purge remove only the old one', async () => {
    const build = (name: string): { qpath: string; old: string; young: string } => {
      const qpath = path.join(tmp(), name);
      const bucket = path.join(
        qpath,
        Math.floor(Date.now() / 1000)
          .toString(16)
          .padStart(8, '0'),
      );
      fs.mkdirSync(bucket, { recursive: true });
      const now = Date.now() / 1000;
      const old = path.join(bucket, '0123456789abc1.tmp');
      const young = path.join(bucket, '0123456789abc2.tmp');
      fs.writeFileSync(old, 'old');
      fs.writeFileSync(young, 'young');
      fs.writeFileSync(path.join(bucket, '0123456789abc3'), 'element');
      fs.utimesSync(old, now - 400, now - 400);
      fs.utimesSync(young, now - 100, now - 100);
      return { qpath, old, young };
    };
    const a = build('ts');
    const b = build('py');
    const q = new QueueSimple(a.qpath);
    await q.purge({ maxtemp: 0 });
    expect([fs.existsSync(a.old), fs.existsSync(a.young)]).toEqual([true, true]);
    expect((await q.purge()).removedTemporary).toBe(1);
    expect([fs.existsSync(a.old), fs.existsSync(a.young)]).toEqual([false, true]);
    const r = py<{ first: boolean[]; second: boolean[]; count: number; names: string[] }>(
      `
import io, contextlib
q = QueueSimple(args['path'])
with contextlib.redirect_stderr(io.StringIO()):
    q.purge(maxtemp=0)
    first = [os.path.exists(args['old']), os.path.exists(args['young'])]
    q.purge()
    second = [os.path.exists(args['old']), os.path.exists(args['young'])]
result = {'first': first, 'second': second, 'count': q.count(), 'names': list(QueueSimple(args['other']))}
`,
      { path: b.qpath, old: b.old, young: b.young, other: a.qpath },
    );
    expect(r.first).toEqual([true, true]);
    expect(r.second).toEqual([false, true]);
    expect(r.count).toBe(1);
    expect(r.names).toEqual(await names(q));
    expect(tree(a.qpath)).toEqual(tree(b.qpath));
  });

  // Case 8
  test('dirq interop - after removing everything, purge leaves only the highest intermediate directory (ours as python)', async () => {
    const ts = path.join(tmp(), 'ts');
    const pyq = path.join(tmp(), 'py');
    const nextSecond = async (): Promise<void> => sleep(1000 - (Date.now() % 1000) + 20);
    const q = new QueueSimple(ts, { granularity: 1 });
    const tsNames: string[] = [];
    // python fills its queue in three distinct seconds (in a separate process, concurrently with us)
    const pending = pyProcess(
      `
q = QueueSimple(args, granularity=1)
names = []
for i in range(3):
    time.sleep(1.02 - time.time() % 1)
    names.append(q.add(b'x%d' % i))
result = names
`,
      pyq,
    );
    for (let i = 0; i < 3; i++) {
      await nextSecond();
      tsNames.push(await q.add(`x${i}`));
    }
    const pr = await pending;
    expect(pr.status).toBe(0);
    const pyNames = JSON.parse(pr.stdout) as string[];
    expect(new Set(tsNames.map((n) => n.slice(0, 8))).size).toBe(3);
    expect(new Set(pyNames.map((n) => n.slice(0, 8))).size).toBe(3);
    // cross removal: python empties our queue, we empty python's
    py('q = QueueSimple(args, granularity=1)\nfor n in list(q):\n    assert q.lock(n)\n    q.remove(n)', ts);
    const p = new QueueSimple(pyq, { granularity: 1 });
    for (const n of pyNames) {
      expect(await p.lock(n)).toBe(true);
      await p.remove(n);
    }
    // we purge python's queue, python purges ours: same result, the highest directory only
    await p.purge();
    py('QueueSimple(args, granularity=1).purge()', ts);
    expect(fs.readdirSync(pyq)).toEqual([
      pyNames
        .map((n) => n.slice(0, 8))
        .sort()
        .at(-1),
    ]);
    expect(fs.readdirSync(ts)).toEqual([
      tsNames
        .map((n) => n.slice(0, 8))
        .sort()
        .at(-1),
    ]);
    // and purging again changes nothing on either side
    await q.purge();
    py('QueueSimple(args, granularity=1).purge()', pyq);
    expect(fs.readdirSync(pyq)).toHaveLength(1);
    expect(fs.readdirSync(ts)).toHaveLength(1);
  });

  // Case 9
  test('dirq interop - python and we alternately add 500 elements each; iteration order is identical', async () => {
    const qpath = path.join(tmp(), 'q');
    const server = new PyServer();
    try {
      await server.call(
        "q = QueueSimple(args, rndhex=3, granularity=3600)\nresult = q.rndhex if hasattr(q, 'rndhex') else 3",
        qpath,
      );
      const q = new QueueSimple(qpath, { rndhex: 12, granularity: 3600 });
      const all: string[] = [];
      for (let i = 0; i < 500; i++) {
        const pn = await server.call<string>("result = q.add(b'p%d' % args)", i);
        const tn = await q.add(`t${i}`);
        expect(pn.at(-1)).toBe('3');
        expect(tn.at(-1)).toBe('c');
        all.push(pn, tn);
      }
      // one bucket (two only if an hour boundary was crossed during the run)
      expect(new Set(all.map((n) => n.slice(0, 8))).size).toBeLessThanOrEqual(2);
      const pyOrder = await server.call<string[]>('result = list(q)');
      const ours = await firstNext(q);
      expect(ours).toHaveLength(1000);
      expect(ours).toEqual(pyOrder);
      expect(ours).toEqual([...all].sort());
      expect(await names(q)).toEqual(pyOrder);
      // and the contents alternate, since names carry the insertion time
      const contents: string[] = [];
      for (const n of ours.slice(0, 10)) contents.push(fs.readFileSync(path.join(qpath, n), 'latin1'));
      expect(contents).toEqual(['p0', 't0', 'p1', 't1', 'p2', 't2', 'p3', 't3', 'p4', 't4']);
    } finally {
      await server.close();
    }
  });

  // Case 10
  test('dirq interop - addPath links a file in (same file system) and fails with EXDEV across file systems, like python add_path', async () => {
    const qpath = path.join(tmp(), 'q');
    const q = new QueueSimple(qpath);
    const src = path.join(tmp(), 'file.bin');
    const bytes = randomBytes(5000);
    fs.writeFileSync(src, bytes);
    const n = await q.addPath(src);
    expect(n).toMatch(NAME_FORMAT);
    expect(fs.existsSync(src)).toBe(false);
    expect(fs.readFileSync(path.join(qpath, n))).toEqual(bytes);
    const got = py<string>(
      "q = QueueSimple(args['path'])\nassert q.lock(args['name'])\nresult = b64(q.get(args['name']))\nq.remove(args['name'])",
      { path: qpath, name: n },
    );
    expect(Buffer.from(got, 'base64')).toEqual(bytes);
    // python's add_path, read by us
    fs.writeFileSync(src, bytes);
    const pn = py<string>("result = QueueSimple(args['path']).add_path(args['src'])", { path: qpath, src });
    expect(fs.existsSync(src)).toBe(false);
    expect(await q.lock(pn)).toBe(true);
    expect(await q.get(pn)).toEqual(bytes);
    await q.remove(pn);

    // cross file system: find a directory on another device than the queue
    const dev = fs.statSync(qpath).dev;
    const other = ['/dev/shm', '/run/user', '/run', '/var/tmp', '/tmp', process.cwd()].find((d) => {
      try {
        fs.accessSync(d, fs.constants.W_OK);
        return fs.statSync(d).dev !== dev;
      } catch {
        return false;
      }
    });
    if (other === undefined) {
      // Explicit, not silent: without a second writable file system EXDEV cannot be provoked here.
      throw new Error(`no writable directory on a file system other than ${qpath}'s (dev ${dev}): cannot test EXDEV`);
    }
    const far = fs.mkdtempSync(path.join(other, 'dirq-interop-xdev-'));
    try {
      const f1 = path.join(far, 'a');
      fs.writeFileSync(f1, 'far away');
      await expect(q.addPath(f1)).rejects.toBeInstanceOf(FileSystemError);
      await expect(q.addPath(f1)).rejects.toMatchObject({ errno: 'EXDEV' });
      expect(fs.readFileSync(f1, 'utf8')).toBe('far away'); // the source is left alone
      const perr = py<string>(
        "try:\n    QueueSimple(args['path']).add_path(args['src'])\n    result = 'no error'\nexcept OSError as e:\n    result = errname(e)",
        { path: qpath, src: f1 },
      );
      expect(perr).toBe('EXDEV');
      expect(fs.existsSync(f1)).toBe(true);
      expect(await q.count()).toBe(0);
    } finally {
      fs.rmSync(far, { recursive: true, force: true });
    }
  });

  // Case 13
  test('dirq interop - file and directory modes match python for umask 0, 0o027 and unset (process umask 022), both queue types', async () => {
    const saved = process.umask(0o022);
    try {
      for (const umask of [0, 0o027, undefined]) {
        const eff = umask ?? 0o022;
        const tag = umask === undefined ? 'none' : umask.toString(8);
        const pyS = path.join(tmp(), `pys-${tag}`, 'deep');
        const tsS = path.join(tmp(), `tss-${tag}`, 'deep');
        const pyN = path.join(tmp(), `pyn-${tag}`);
        const tsN = path.join(tmp(), `tsn-${tag}`);
        // python runs as a child of this process, so it inherits the 022 umask
        const r = py<{ s: string; n: string }>(
          `
m = args['umask']
s = QueueSimple(args['s'], umask=m).add(b'x')
nq = Queue(args['n'], umask=m, schema={'body': 'string', 'bin': 'binary?'})
n = nq.add({'body': 'x', 'bin': b'y'})
assert nq.lock(n)
result = {'s': s, 'n': n}
`,
          { umask: umask ?? null, s: pyS, n: pyN },
        );
        const s = await new QueueSimple(tsS, umask === undefined ? {} : { umask }).add('x');
        const nq = new Queue(tsN, { ...(umask === undefined ? {} : { umask }), schema: { body: 'string', bin: 'binary?' } });
        const n = await nq.add({ body: 'x', bin: Buffer.from('y') });
        expect(await nq.lock(n)).toBe(true);
        const simpleModes = (root: string, name: string) => ({
          parent: mode(path.dirname(root)),
          top: mode(root),
          bucket: mode(path.join(root, name.slice(0, 8))),
          element: mode(path.join(root, name)),
        });
        const normalModes = (root: string, name: string) => ({
          top: mode(root),
          temporary: mode(path.join(root, 'temporary')),
          obsolete: mode(path.join(root, 'obsolete')),
          counter: mode(path.join(root, name.slice(0, 8))),
          element: mode(path.join(root, name)),
          body: mode(path.join(root, name, 'body')),
          bin: mode(path.join(root, name, 'bin')),
          locked: mode(path.join(root, name, 'locked')),
        });
        const d = 0o777 & ~eff;
        const f = 0o666 & ~eff;
        const label = `umask ${tag}`;
        expect({ label, ...simpleModes(tsS, s) }).toEqual({ label, ...simpleModes(pyS, r.s) });
        expect({ label, ...simpleModes(tsS, s) }).toEqual({ label, parent: d, top: d, bucket: d, element: f });
        expect({ label, ...normalModes(tsN, n) }).toEqual({ label, ...normalModes(pyN, r.n) });
        expect({ label, ...normalModes(tsN, n) }).toEqual({
          label,
          top: d,
          temporary: d,
          obsolete: d,
          counter: d,
          element: d,
          body: f,
          bin: f,
          locked: d,
        });
      }
    } finally {
      process.umask(saved);
    }
  });
});
