// Benchmark: the handler runner (@msgbricks/handler) with a no-op handler against the minimal hand-written loop
// (lock, get, parse, remove per element) on the same tmpfs spool, in alternating rounds, each case in its own
// process; then msghandle --exec true (a process per message). See docs/benchmarks.md.
//
//   npm run bench:handler                  # 100,000 messages of 1 KiB, 3 rounds; msghandle on 2,000
//   npm run bench:handler -- --quick       # 5,000 messages, 1 round, msghandle on 200: a smoke test
//   options: --count N --reps R --exec-count N --dir PATH (default /dev/shm)

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DQS, Message } = require('../packages/message/dist');

const BODY_SIZE = 1024;
const TARGETS = { rate: 0.9, cpu: 1.2 };
const CASE = path.join(__dirname, 'lib', 'handler-case.js');
const MSGHANDLE = path.join(__dirname, '..', 'agents', 'msghandle', 'bin', 'msghandle.js');

function parseArgs(argv) {
  const o = { count: 100_000, reps: 3, execCount: 2000, dir: fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir() };
  const int = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
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

function runCase(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CASE, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${spec.case}: exit ${code}\n${err}`)),
    );
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (v, d = 0) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

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
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  try {
    for (let r = 0; r < o.reps; r++) {
      for (const c of cases) {
        await fill(spool, o.count);
        const m = await runCase({ ...c.spec, dir: spool });
        if (m.count !== o.count) throw new Error(`${c.key}: handled ${m.count} of ${o.count}`);
        results[c.key].push(m);
      }
    }
    const rows = [['case', 'msg/s', 'CPU us/msg', 'of which sys', 'peak RSS MB']];
    const summary = {};
    for (const c of cases) {
      const ms = results[c.key];
      const rate = median(ms.map((m) => (m.count / m.wallMs) * 1000));
      const cpu = median(ms.map((m) => m.cpuUs / m.count));
      const sys = median(ms.map((m) => m.sysUs / m.count));
      const rss = Math.max(...ms.map((m) => m.maxRssKb)) / 1024;
      summary[c.key] = { rate, cpu };
      rows.push([c.label, fmt(rate), fmt(cpu, 1), fmt(sys, 1), fmt(rss, 1)]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
    for (const [i, row] of rows.entries()) {
      console.log(row.map((c, j) => (j === 0 ? String(c).padEnd(widths[j]) : String(c).padStart(widths[j]))).join('  '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    }
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
        `msghandle --exec true: ${o.execCount} messages in ${s.toFixed(1)} s: ${fmt(o.execCount / s)} msg/s (a process per message; start-up included)`,
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
