// Benchmark: @msgbricks/dirq against python-dirq 1.8 (Debian python3-dirq), in one run, on one file system.
//
//   npm run bench:dirq -- [--dir PATH] [--count N] [--quick]
//
// Every figure is elements per second, the median of 3 runs (1 with --quick), each on a fresh queue in a fresh
// directory (dirty data is flushed with `sync --file-system` before each timed run; caches are not dropped).
// Python and Node runs alternate, so drift on a shared machine hits both sides alike.
// Nothing is written outside the benchmark's own temporary directory, which is removed at the end.

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Queue, QueueSimple } = require('../packages/dirq/dist');

const PYTHON = '/usr/bin/python3';
const SIZES = [100, 1024];

// The python side: one measurement per process, arguments and result as JSON.
const PY_SCRIPT = `
import errno, json, os, sys, time
try:
    import dirq
    from dirq.QueueSimple import QueueSimple, TEMPORARY_SUFFIX
    from dirq.QueueBase import _name, _file_create, _special_mkdir
    from dirq.queue import Queue
except ImportError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(3)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsyncQueueSimple(QueueSimple):
    """python-dirq has no fsync option. This is QueueSimple.add as python-dirq 1.8 writes it, plus the
    syncs @msgbricks/dirq does with fsync: true: fdatasync of the temporary file before it is closed
    and linked, then fsync of the bucket directory (and of the queue directory if the bucket is new)."""

    def _add_data(self, data):
        # python-dirq 1.8 QueueSimple._add_data, with flush + fdatasync added before close.
        _dir = self._add_dir()
        self._created = False
        while 1:
            tmp = '%s/%s/%s%s' % (self.path, _dir, _name(self.rndhex), TEMPORARY_SUFFIX)
            try:
                new_file = _file_create(tmp, umask=self.umask, utf8=False)
            except EnvironmentError as error:
                if error.errno == errno.ENOENT:
                    self._created = _special_mkdir('%s/%s' % (self.path, _dir), self.umask) or self._created
                    continue
                if error.errno != errno.EEXIST:
                    raise
            else:
                break
        new_file.write(data)
        new_file.flush()
        os.fdatasync(new_file.fileno())
        new_file.close()
        return _dir, tmp

    def add(self, data):
        _dir, tmp = self._add_data(data)
        name = self._add_path(tmp, _dir)
        fsync_dir('%s/%s' % (self.path, _dir))
        if self._created:
            fsync_dir(self.path)
        return name


def main():
    a = json.loads(sys.argv[1])
    op = a["op"]
    if op == "version":
        print(json.dumps({"version": dirq.VERSION, "python": sys.version.split()[0]}))
        return
    qdir, count, data = a["dir"], a["count"], b"x" * a["size"]
    n = 0
    if op == "simple-add":
        q = FsyncQueueSimple(qdir) if a["fsync"] else QueueSimple(qdir)
        t = time.perf_counter()
        for _ in range(count):
            q.add(data)
        n = count
    elif op == "simple-consume":
        q = QueueSimple(qdir)
        t = time.perf_counter()
        for name in q:
            if q.lock(name):
                q.get(name)
                q.remove(name)
                n += 1
    elif op == "queue-add":
        q = Queue(qdir, schema={"body": "binary"})
        t = time.perf_counter()
        for _ in range(count):
            q.add({"body": data})
        n = count
    elif op == "queue-consume":
        q = Queue(qdir, schema={"body": "binary"})
        t = time.perf_counter()
        for name in q:
            if q.lock(name):
                q.get(name)
                q.remove(name)
                n += 1
    else:
        raise SystemExit("unknown op " + op)
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t}))


main()
`;

function python(args) {
  const r = spawnSync(PYTHON, ['-c', PY_SCRIPT, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stdout + r.stderr).trim();
    throw new Error(`${PYTHON} failed (${args.op}): ${why}`);
  }
  return JSON.parse(r.stdout);
}

function checkPython() {
  const r = spawnSync(PYTHON, ['-c', 'import dirq.QueueSimple, dirq.queue'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    console.error(`python-dirq is required (${PYTHON} with the dirq module), install it with:`);
    console.error('  apt-get install -y python3-dirq');
    process.exit(1);
  }
  return python({ op: 'version' });
}

// The Node side: same operations, same data, same loops as the python ones.
async function node(args) {
  const { op, dir, count, size, fsync, io, batch } = args;
  const data = Buffer.alloc(size, 'x');
  let n = 0;
  let t;
  if (op === 'simple-add') {
    const q = new QueueSimple(dir, { fsync, io });
    t = performance.now();
    for (let i = 0; i < count; i++) await q.add(data);
    n = count;
  } else if (op === 'simple-addmany') {
    const q = new QueueSimple(dir, { fsync, io });
    t = performance.now();
    for (let i = 0; i < count; i += batch) await q.addMany(new Array(Math.min(batch, count - i)).fill(data));
    n = count;
  } else if (op === 'simple-consume') {
    const q = new QueueSimple(dir, { fsync, io });
    t = performance.now();
    for await (const name of q) {
      if (await q.lock(name)) {
        await q.get(name);
        await q.remove(name);
        n++;
      }
    }
  } else if (op === 'queue-add') {
    const q = new Queue(dir, { schema: { body: 'binary' }, fsync, io });
    t = performance.now();
    for (let i = 0; i < count; i++) await q.add({ body: data });
    n = count;
  } else if (op === 'queue-consume') {
    const q = new Queue(dir, { schema: { body: 'binary' }, fsync, io });
    t = performance.now();
    for await (const name of q) {
      if (await q.lock(name)) {
        await q.get(name);
        await q.remove(name);
        n++;
      }
    }
  } else {
    throw new Error(`unknown op ${op}`);
  }
  return { n, seconds: (performance.now() - t) / 1000 };
}

function parseArgs(argv) {
  const o = { dir: undefined, count: 20000, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dir') o.dir = argv[++i];
    else if (a === '--count') o.count = Number(argv[++i]);
    else if (a === '--quick') o.quick = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/dirq.js [--dir PATH] [--count N] [--quick]');
      process.exit(0);
    } else {
      console.error(`unknown argument: ${a}`);
      process.exit(2);
    }
  }
  if (o.dir === undefined && argv.includes('--dir')) throw new Error('--dir needs a path');
  if (!Number.isInteger(o.count) || o.count < 1) throw new Error('--count needs a positive integer');
  return o;
}

function fsInfo(dir) {
  try {
    const lines = execFileSync('df', ['-T', '-P', dir], { encoding: 'utf8' }).trim().split('\n');
    const f = lines[lines.length - 1].split(/\s+/);
    return { type: f[1], source: f[0], mount: f[f.length - 1] };
  } catch {
    // No df: the longest /proc/mounts prefix.
    let best = { type: 'unknown', source: '?', mount: '' };
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [source, mount, type] = line.split(' ');
      if (mount && (dir === mount || dir.startsWith(mount === '/' ? '/' : `${mount}/`)) && mount.length >= best.mount.length) {
        best = { type, source, mount };
      }
    }
    return best;
  }
}

function syncFs(dir) {
  try {
    execFileSync('sync', ['--file-system', dir]);
  } catch {
    // Flushing beforehand only makes runs more even; without it the figures stay valid.
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (v) => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const fmtRatio = (a, b) => (a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}x`);
const fmtSize = (s) => (s >= 1024 ? `${s / 1024}KiB` : `${s}B`);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const reps = opts.quick ? 1 : 3;
  const count = opts.quick ? Math.min(opts.count, 2000) : opts.count;
  // fsync per element costs a journal commit each: fewer elements keep the run short (the rate is per element).
  const fsyncCount = Math.min(count, opts.quick ? 200 : 1000);
  // Secondary figures (normal Queue, io: 'async') use a tenth of the count to keep the run short.
  const smallCount = Math.max(1, Math.floor(count / 10));
  const batch = 1000;
  const py = checkPython();

  const parent = opts.dir ? path.resolve(opts.dir) : os.tmpdir();
  // mkdirSync returns the first directory it made: that one goes at the end too (--dir /dev/shm/new leaves nothing).
  const madeParent = fs.mkdirSync(parent, { recursive: true });
  const base = fs.mkdtempSync(path.join(parent, 'bench-dirq-'));
  const cleanup = () => fs.rmSync(madeParent ?? base, { recursive: true, force: true });
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const info = fsInfo(base);
  console.log(`@msgbricks/dirq vs python-dirq ${py.version} (python ${py.python}), node ${process.version}`);
  console.log(`directory ${base}: ${info.type} (${info.source} on ${info.mount})`);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Linux ${os.release()}`);
  console.log(
    `elements: ${count} (fsync per-element add: ${fsyncCount}; normal Queue and io: 'async': ${smallCount}; addMany batches of ${batch}); ` +
      `median of ${reps} run(s), each on a fresh queue\n`,
  );

  // Each case: key, impl, op, then an optional follow-up consume on the queue it filled.
  const cases = [
    { key: 'simple-add-off', impl: 'py', op: 'simple-add', fsync: false, n: count, consume: 'simple-consume-off' },
    { key: 'simple-add-off', impl: 'sync', op: 'simple-add', fsync: false, n: count, consume: 'simple-consume-off' },
    { key: 'simple-add-off', impl: 'async', op: 'simple-add', fsync: false, n: smallCount, consume: 'simple-consume-off' },
    { key: 'simple-add-on', impl: 'py', op: 'simple-add', fsync: true, n: fsyncCount },
    { key: 'simple-add-on', impl: 'sync', op: 'simple-add', fsync: true, n: fsyncCount },
    { key: 'simple-addmany-on', impl: 'sync', op: 'simple-addmany', fsync: true, n: count, consume: 'simple-consume-on' },
    { key: 'queue-add-off', impl: 'py', op: 'queue-add', fsync: false, n: smallCount, consume: 'queue-consume-off' },
    { key: 'queue-add-off', impl: 'sync', op: 'queue-add', fsync: false, n: smallCount, consume: 'queue-consume-off' },
  ];

  const results = new Map(); // `${key}/${size}/${impl}` -> rates
  const record = (key, size, impl, r, expected) => {
    if (r.n !== expected) throw new Error(`${impl} ${key}: ${r.n} elements instead of ${expected}`);
    const k = `${key}/${size}/${impl}`;
    if (!results.has(k)) results.set(k, []);
    results.get(k).push(r.n / r.seconds);
  };
  const run = (impl, args) => (impl === 'py' ? python(args) : node({ ...args, io: impl === 'async' ? 'async' : 'sync', batch }));

  const started = performance.now();
  try {
    for (const size of SIZES) {
      for (let rep = 0; rep < reps; rep++) {
        for (const c of cases) {
          const dir = path.join(base, `${c.key}-${size}-${c.impl}-${rep}`);
          const args = { op: c.op, dir, count: c.n, size, fsync: c.fsync };
          syncFs(base);
          record(c.key, size, c.impl, await run(c.impl, args), c.n);
          if (c.consume) {
            syncFs(base);
            const op = c.op.startsWith('queue') ? 'queue-consume' : 'simple-consume';
            record(c.consume, size, c.impl, await run(c.impl, { ...args, op }), c.n);
          }
          // Deleting here would make the next timed run compete with the deletion's delayed work (ext4
          // mounted with `discard` trims in the background): queues are removed when the run ends.
        }
        process.stderr.write(
          `  ${fmtSize(size)} run ${rep + 1}/${reps} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
        );
      }
    }
  } finally {
    cleanup();
  }

  const get = (key, size, impl) => {
    const xs = results.get(`${key}/${size}/${impl}`);
    return xs ? median(xs) : undefined;
  };
  const rows = [
    ['QueueSimple add', 'simple-add-off', 'off', 'ratio', 1.2],
    ['QueueSimple consume', 'simple-consume-off', 'off', 'ratio', 1.2],
    ['QueueSimple add (one by one)', 'simple-add-on', 'on', 'ratio', undefined],
    ['QueueSimple addMany', 'simple-addmany-on', 'on', 'rate', 10000],
    ['QueueSimple consume (of the above)', 'simple-consume-on', 'on', undefined, undefined],
    ['Queue add', 'queue-add-off', 'off', undefined, undefined],
    ['Queue consume', 'queue-consume-off', 'off', undefined, undefined],
  ];
  const header = ['operation', 'size', 'fsync', 'python-dirq', '@msgbricks', 'ratio', 'target', 'met', 'io:async'];
  const table = [header];
  const verdicts = [];
  for (const [label, key, fsync, kind, target] of rows) {
    for (const size of SIZES) {
      const p = get(key, size, 'py');
      const s = get(key, size, 'sync');
      const a = get(key, size, 'async');
      let tgt = '';
      let met = '';
      if (kind === 'ratio') {
        tgt = target ? `>= ${target}x` : '';
        if (target) met = s / p >= target ? 'yes' : 'NO';
      } else if (kind === 'rate') {
        tgt = `>= ${fmt(target)}/s`;
        met = s >= target ? 'yes' : 'NO';
      }
      if (met) verdicts.push(met === 'yes');
      table.push([label, fmtSize(size), fsync, fmt(p), fmt(s), fmtRatio(s, p), tgt, met, a === undefined ? '' : fmt(a)]);
    }
  }
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const [i, r] of table.entries()) {
    console.log(r.map((c, j) => (j < 3 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log(
    `\nelements/s, median of ${reps}; ratio = @msgbricks (io: 'sync') / python-dirq. ` +
      'python fsync on = QueueSimple subclass adding fdatasync(file) + fsync(dir), the syncs @msgbricks does; ' +
      'python-dirq has no batch API (addMany n/a). Consume never syncs in either library.',
  );
  console.log(
    `targets met: ${verdicts.filter(Boolean).length}/${verdicts.length}; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
