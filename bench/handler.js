// Benchmark: the handler runner (@msgbricks/handler) with a no-op handler against the minimal hand-written loop
// (lock, get, parse, remove per element) on the same tmpfs spool, in alternating rounds, each case in its own
// process; then msghandle --exec true (a process per message). See docs/benchmarks.md.
//
//   npm run bench:handler                  # 100,000 messages of 1 KiB, 3 rounds; msghandle on 2,000
//   npm run bench:handler -- --quick       # 5,000 messages, 1 round, msghandle on 200: a smoke test
//   options: --count N --reps R --exec-count N --dir PATH (default /dev/shm)

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DQS, Message } = require('../packages/message/dist');
const rounds = require('./lib/rounds');

const BODY_SIZE = 1024;
const TARGETS = { rate: 0.9, cpu: 1.2 };
const CASE = path.join(__dirname, 'lib', 'handler-case.js');
const MSGHANDLE = path.join(__dirname, '..', 'agents', 'msghandle', 'bin', 'msghandle.js');

function parseArgs(argv) {
  const o = { count: 100_000, reps: 3, execCount: 2000, dir: fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir() };
  const int = rounds.positiveInt;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') o.count = int(a, argv[++i]);
    else if (a === '--reps') o.reps = int(a, argv[++i]);
    else if (a === '--exec-count') o.execCount = int(a, argv[++i]);
    else if (a === '--dir') o.dir = argv[++i];
    else if (a === '--quick') Object.assign(o, { count: 5000, reps: 1, execCount: 200 });
    else throw new Error(`unknown argument: ${a} (--count N --reps R --exec-count N --dir PATH --quick)`);
  }
  return o;
}

async function fill(dir, n) {
  fs.rmSync(dir, { recursive: true, force: true });
  const q = new DQS(dir);
  const one = new Message({ header: { destination: '/queue/bench' }, body: Buffer.alloc(BODY_SIZE, 'x') }).serialize();
  const batch = new Array(1000).fill(one);
  for (let i = 0; i < n; i += 1000) await q.addMany(i + 1000 <= n ? batch : batch.slice(0, n - i));
}

const runCase = (spec) => rounds.runCase(CASE, spec);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const base = fs.mkdtempSync(path.join(o.dir, 'bench-handler-'));
  const spool = path.join(base, 'spool');
  const cases = [
    { key: 'raw', label: 'raw loop (lock, get, parse, remove)', spec: { case: 'raw' } },
    { key: 'runner', label: 'consume(), concurrency 1', spec: { case: 'runner', concurrency: 1 } },
    { key: 'runner4', label: 'consume(), concurrency 4', spec: { case: 'runner', concurrency: 4 } },
  ];
  const results = Object.fromEntries(cases.map((c) => [c.key, []]));
  console.log(`${o.count} messages of ${BODY_SIZE} B per case, ${o.reps} alternating rounds, spool on ${o.dir}`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average ${rounds.loadavg()}\n`);
  try {
    for (let r = 0; r < o.reps; r++) {
      for (const c of cases) {
        await fill(spool, o.count);
        const m = await runCase({ ...c.spec, dir: spool });
        if (m.count !== o.count) throw new Error(`${c.key}: handled ${m.count} of ${o.count}`);
        results[c.key].push(m);
      }
    }
    const summary = rounds.report(cases, results);
    const rr = summary.runner.rate / summary.raw.rate;
    const cr = summary.runner.cpu / summary.raw.cpu;
    console.log(
      `\nrunner / raw: rate ${rr.toFixed(2)}x (target >= ${TARGETS.rate}x), CPU per message ${cr.toFixed(2)}x (target <= ${TARGETS.cpu}x): ${rr >= TARGETS.rate && cr <= TARGETS.cpu ? 'met' : 'NOT met'}`,
    );
    if (fs.existsSync(MSGHANDLE)) {
      await fill(spool, o.execCount);
      const t0 = performance.now();
      const r = spawnSync(
        process.execPath,
        [MSGHANDLE, '--queue', `path=${spool}`, '--exec', 'true', '--drain', '--log', 'null'],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      const s = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`msghandle exited ${r.status}`);
      console.log(
        `msghandle --exec true: ${o.execCount} messages in ${s.toFixed(1)} s: ${rounds.fmt(o.execCount / s)} msg/s (a process per message; start-up included)`,
      );
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
