// Interoperability of Queue (python-dirq's "normal" queue, DQN) and QueueSet with the real python-dirq 1.8,
// spec §8 cases 14-17 (case 13's DQN half is in interop-simple).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NotLockedError, Queue, QueueSet, QueueSimple, tableToString } from '@msgbricks/dirq';
import { interopFixture, NAME_FORMAT, PyServer, py, sleep, tree } from './helpers/python';

jest.setTimeout(60_000);

const tmp = interopFixture();

const SCHEMA = { body: 'string', bin: 'binary?', header: 'table?' };
const PY_SCHEMA = "{'body': 'string', 'bin': 'binary?', 'header': 'table?'}";

interface Input {
  body: string;
  bin?: string; // base64
  header?: Record<string, string>;
}

const INPUTS: Input[] = [
  { body: 'plain', header: { b: 'x\ty', a: '1\\2\n3', '': '' } },
  { body: '', header: {} },
  { body: 'only body' },
  { body: 'Élément ☺ 😀\r\n', bin: Buffer.from([0, 255, 10, 13, 9, 92]).toString('base64') },
  {
    body: 'tables',
    bin: '',
    header: {
      clé: 'valeur é',
      '☺': '😀',
      '\uffff': 'BMP last', // code point order puts this before the astral key below (UTF-16 order would not)
      '😀key': 'astral',
      'tab\there': 'lf\nthere',
      'back\\slash': '\\t is not a tab',
      'hi\\t\th\nere': 'x',
      cr: 'a\rb',
      Z: 'upper',
      z: 'lower',
      '': 'empty key',
      trailing: 'ends with backslash \\',
    },
  },
  { body: 'x'.repeat(10000), bin: Buffer.alloc(70000, 7).toString('base64'), header: { k: 'v'.repeat(5000) } },
];

function toData(i: Input): Record<string, Buffer | string | Record<string, string>> {
  const d: Record<string, Buffer | string | Record<string, string>> = { body: i.body };
  if (i.bin !== undefined) d.bin = Buffer.from(i.bin, 'base64');
  if (i.header !== undefined) d.header = i.header;
  return d;
}

const PY_TO_DATA = `
def to_data(i):
    d = {'body': i['body']}
    if 'bin' in i: d['bin'] = unb64(i['bin'])
    if 'header' in i: d['header'] = i['header']
    return d
def from_data(d):
    o = dict(d)
    if 'bin' in o: o['bin'] = b64(o['bin'])
    return o
`;

describe('dirq interop - Queue (normal) and QueueSet', () => {
  // Case 14
  test('dirq interop - normal queue elements (strings, binaries, tables with escapes) are read equal and written byte-identical', async () => {
    const pyPath = path.join(tmp(), 'py');
    const tsPath = path.join(tmp(), 'ts');
    const r = py<{ names: string[]; back: Input[] }>(
      `${PY_TO_DATA}
q = Queue(args['path'], schema=${PY_SCHEMA})
names = [q.add(to_data(i)) for i in args['inputs']]
result = {'names': names}
`,
      { path: pyPath, inputs: INPUTS },
    );
    const tq = new Queue(tsPath, { schema: SCHEMA });
    const pq = new Queue(pyPath, { schema: SCHEMA });
    const tsNames: string[] = [];
    for (const [k, input] of INPUTS.entries()) {
      const pn = r.names[k] as string;
      expect(pn).toMatch(NAME_FORMAT);
      expect(await pq.lock(pn)).toBe(true);
      expect(await pq.get(pn)).toEqual(toData(input));
      const tn = await tq.add(toData(input));
      tsNames.push(tn);
      // same files, same bytes
      expect(fs.readdirSync(path.join(tsPath, tn)).sort()).toEqual(
        fs
          .readdirSync(path.join(pyPath, pn))
          .filter((f) => f !== 'locked')
          .sort(),
      );
      for (const f of fs.readdirSync(path.join(tsPath, tn))) {
        expect({ f, bytes: fs.readFileSync(path.join(tsPath, tn, f)) }).toEqual({
          f,
          bytes: fs.readFileSync(path.join(pyPath, pn, f)),
        });
      }
    }
    // the spec's pinned example, and the empty table as an empty file
    expect(fs.readFileSync(path.join(tsPath, tsNames[0] as string, 'header'))).toEqual(
      Buffer.from('\t\n' + 'a\t1\\\\2\\n3\n' + 'b\tx\\ty\n', 'utf8'),
    );
    expect(fs.readFileSync(path.join(tsPath, tsNames[1] as string, 'header'))).toEqual(Buffer.alloc(0));
    // keys sort by code point like python's sorted(): U+FFFF before U+1F600 (UTF-16 order would invert them)
    const lines = tableToString(INPUTS[4]?.header ?? {}).split('\n');
    expect(lines.indexOf('\uffff\tBMP last')).toBeLessThan(lines.indexOf('😀key\tastral'));
    expect(lines.indexOf('\uffff\tBMP last')).toBeGreaterThanOrEqual(0);
    // python reads what we wrote as the same data
    const back = py<Input[]>(
      `${PY_TO_DATA}
q = Queue(args['path'], schema=${PY_SCHEMA})
out = []
for n in args['names']:
    assert q.lock(n)
    out.append(from_data(q.get(n)))
result = out
`,
      { path: tsPath, names: tsNames },
    );
    expect(back).toEqual(INPUTS);
  });

  // Case 15
  test('dirq interop - normal queue rollover with maxelts=2, cross-implementation lock, get and remove', async () => {
    const qpath = path.join(tmp(), 'q');
    const server = new PyServer();
    try {
      await server.call(`q = Queue(args, maxelts=2, schema={'body': 'string'})`, qpath);
      const q = new Queue(qpath, { maxelts: 2, schema: { body: 'string' } });
      // python and we alternate: both follow the same insertion-directory rule
      const names = [
        await server.call<string>("result = q.add({'body': 'p0'})"),
        await q.add({ body: 't1' }),
        await server.call<string>("result = q.add({'body': 'p2'})"),
        await q.add({ body: 't3' }),
        await server.call<string>("result = q.add({'body': 'p4'})"),
      ];
      expect(names.map((n) => n.slice(0, 8))).toEqual(['00000000', '00000000', '00000001', '00000001', '00000002']);
      expect(fs.readdirSync(qpath).sort()).toEqual(['00000000', '00000001', '00000002', 'obsolete', 'temporary']);
      expect(await q.count()).toBe(5);
      expect(await server.call('result = q.count()')).toBe(5);
      const [p0, t1, p2, t3, p4] = names as [string, string, string, string, string];

      // we lock (mkdir locked): python can get; python's lock fails
      expect(await q.lock(p0)).toBe(true);
      expect(fs.statSync(path.join(qpath, p0, 'locked')).isDirectory()).toBe(true);
      expect(await server.call('result = q.get(args)', p0)).toEqual({ body: 'p0' });
      expect(await server.call('result = q.lock(args)', p0)).toBe(false);
      // we remove our locked element: gone, obsolete/ empty
      await q.remove(p0);
      expect(fs.existsSync(path.join(qpath, p0))).toBe(false);
      expect(fs.readdirSync(path.join(qpath, 'obsolete'))).toEqual([]);
      // python removes an element we locked
      expect(await q.lock(t1)).toBe(true);
      await server.call('q.remove(args)', t1);
      expect(fs.existsSync(path.join(qpath, t1))).toBe(false);
      expect(fs.readdirSync(path.join(qpath, 'obsolete'))).toEqual([]);
      // python locks, we cannot; we get and remove
      expect(await server.call('result = q.lock(args)', p2)).toBe(true);
      expect(await q.lock(p2)).toBe(false);
      await expect(q.lock(p2, false)).rejects.toMatchObject({ errno: 'EEXIST' });
      expect(await q.get(p2)).toEqual({ body: 'p2' });
      await q.remove(p2);
      // unlocked elements: python says "not locked", we throw NotLockedError
      await expect(server.call('q.get(args)', t3)).rejects.toThrow(/not locked/);
      await expect(q.get(t3)).rejects.toBeInstanceOf(NotLockedError);
      await expect(q.remove(t3)).rejects.toBeInstanceOf(NotLockedError);
      // python's normal-queue unlock re-raises a bare OSError: the errno survives only in the message
      await expect(server.call('q.unlock(args)', t3)).rejects.toThrow(/cannot rmdir.*\[Errno 2\]/);
      await expect(q.unlock(t3)).rejects.toMatchObject({ errno: 'ENOENT' });
      expect(await q.unlock(t3, true)).toBe(false);
      // python unlocks our lock and vice versa
      expect(await q.lock(t3)).toBe(true);
      expect(await server.call('result = q.unlock(args)', t3)).toBe(true);
      expect(await server.call('result = q.lock(args)', p4)).toBe(true);
      expect(await q.unlock(p4)).toBe(true);
      expect(await q.count()).toBe(2);
      expect(await server.call('result = q.count()')).toBe(2);
      expect(await server.call('result = list(q)')).toEqual([t3, p4]);
    } finally {
      await server.close();
    }
  });

  // Case 16
  test('dirq interop - normal queue purge (stale temporary/obsolete, stale lock, empty directories) gives the same tree as python', async () => {
    const a = path.join(tmp(), 'a');
    const q = new Queue(a, { maxelts: 1, schema: { body: 'string' } });
    const n: string[] = [];
    for (let i = 0; i < 5; i++) n.push(await q.add({ body: `e${i}` }));
    expect(n.map((x) => x.slice(0, 8))).toEqual(['00000000', '00000001', '00000002', '00000003', '00000004']);
    const [e0, e1, e2, e3] = n as [string, string, string, string];
    for (const e of [e0, e1]) {
      expect(await q.lock(e)).toBe(true);
      await q.remove(e);
    }
    const now = Date.now() / 1000;
    const age = (p: string, s: number): void => fs.utimesSync(p, now - s, now - s);
    // e2: locked long ago (the element directory's mtime is the lock time); e3: locked just now
    expect(await q.lock(e2)).toBe(true);
    age(path.join(a, e2), 1000);
    expect(await q.lock(e3)).toBe(true);
    // stale and fresh volatile directories
    const mk = (rel: string, files: string[], ageS: number): void => {
      const p = path.join(a, rel);
      fs.mkdirSync(p);
      for (const f of files) {
        if (f === 'locked') fs.mkdirSync(path.join(p, f));
        else fs.writeFileSync(path.join(p, f), f);
      }
      age(p, ageS);
    };
    mk('temporary/00000000000001', ['body'], 400);
    mk('obsolete/00000000000003', ['body', 'locked'], 400);
    mk('temporary/00000000000005', [], 500);
    // an identical copy for python (cp -a keeps the mtimes)
    const b = path.join(tmp(), 'b');
    execFileSync('cp', ['-a', a, b]);
    expect(tree(b)).toEqual(tree(a));

    const before = tree(a);
    const res = await q.purge();
    expect(res.brokenLocks).toBe(1);
    expect(res.removedTemporary).toBe(3);
    py('import io, contextlib\nwith contextlib.redirect_stderr(io.StringIO()):\n    Queue(args).purge()', b);
    const after = tree(a);
    expect(after).toEqual(tree(b));
    const gone = before.filter((p) => !after.includes(p));
    expect(gone.sort()).toEqual(
      [
        '00000000/',
        '00000001/',
        `${e2}/locked/`,
        'obsolete/00000000000003/',
        'obsolete/00000000000003/body',
        'obsolete/00000000000003/locked/',
        'temporary/00000000000001/',
        'temporary/00000000000001/body',
        'temporary/00000000000005/',
      ].sort(),
    );
    expect(after).toContain(`${e3}/locked/`);
    // ours finds nothing more to do after python's purge
    expect(await new Queue(b).purge()).toEqual({ removedTemporary: 0, brokenLocks: 0, removedDirectories: 0, warnings: [] });

    // Fresh volatile directories (an add or a remove in progress) must survive. Ours keeps them; python-dirq 1.8's
    // purge rmdirs every volatile directory whatever its age (the rmdir calls sit outside its `if _older(...)`),
    // so it deletes a fresh empty temporary/ (an add in progress) and crashes with ENOTEMPTY on a fresh non-empty one.
    for (const root of [a, b]) {
      fs.mkdirSync(path.join(root, 'temporary/00000000000002'));
      fs.writeFileSync(path.join(root, 'temporary/00000000000002/body'), 'in progress');
      fs.mkdirSync(path.join(root, 'temporary/00000000000006'));
    }
    await q.purge();
    expect(fs.readdirSync(path.join(a, 'temporary')).sort()).toEqual(['00000000000002', '00000000000006']);
    const pyFresh = py<string>(
      'import io, contextlib\ntry:\n    with contextlib.redirect_stderr(io.StringIO()):\n        Queue(args).purge()\n    result = "ok"\nexcept OSError as e:\n    result = str(e)',
      b,
    );
    expect(pyFresh).toMatch(/cannot rmdir\(.*temporary\/00000000000002\).*Errno 39/);
  });

  // Case 17
  test('dirq interop - QueueSet over python- and TS-filled simple and normal queues iterates in python QueueSet order', async () => {
    const paths = ['s-py', 's-ts', 'n-py', 'n-ts'].map((p) => path.join(tmp(), p)) as [string, string, string, string];
    const server = new PyServer();
    try {
      await server.call(
        "qs = QueueSimple(args[0], granularity=1)\nqn = Queue(args[2], maxelts=3, schema={'body': 'string'})",
        paths,
      );
      const ts = new QueueSimple(paths[1], { granularity: 1 });
      const tn = new Queue(paths[3], { maxelts: 3, schema: { body: 'string' } });
      for (let i = 0; i < 40; i++) {
        await server.call("qs.add(b'%d' % args)", i);
        await ts.add(`${i}`);
        await server.call("qn.add({'body': '%d' % args})", i);
        await tn.add({ body: `${i}` });
        if (i % 10 === 9) await sleep(1000 - (Date.now() % 1000) + 10);
      }
      const pyOrder = py<[string, string][]>(
        `
qs = QueueSimple(args[0], granularity=1)
ts = QueueSimple(args[1], granularity=1)
qn = Queue(args[2])
tn = Queue(args[3])
result = [[q.path, n] for q, n in QueueSet(qs, ts, qn, tn)]
`,
        paths,
      );
      expect(pyOrder).toHaveLength(160);
      const set = new QueueSet<QueueSimple | Queue>(new QueueSimple(paths[0]), ts, new Queue(paths[2]), tn);
      const ours: [string, string][] = [];
      for await (const { queue, name } of set) ours.push([queue.path, name]);
      expect(ours).toEqual(pyOrder);
      const viaFirst: [string, string][] = [];
      for (let e = await set.first(); e !== undefined; e = await set.next()) viaFirst.push([e.queue.path, e.name]);
      expect(viaFirst).toEqual(pyOrder);
      expect(await set.count()).toBe(160);
      // Perl's Directory::Queue::Set would merge on the 14-hex element name alone (pure time order): here the
      // normal queues' counter directories (00000000, ...) sort before every time bucket, so the orders differ.
      const perl = [...ours].sort((x, y) => (x[1].slice(-14) < y[1].slice(-14) ? -1 : x[1].slice(-14) > y[1].slice(-14) ? 1 : 0));
      expect(perl).not.toEqual(pyOrder);
      expect(pyOrder.slice(0, 80).every(([p]) => p === paths[2] || p === paths[3])).toBe(true);
    } finally {
      await server.close();
    }
  });
});
