// The broker benchmarks' common part (bench/stomp.js, bench/amqp.js): one private RabbitMQ, six cases per protocol
// run in alternating rounds, each case in its own process measured by bench/lib/measure.js, and a backlog series for
// the agent's memory. See docs/benchmarks.md for what is measured and why.
//
// Cases, each direction against the same broker:
//   out-raw        raw client, N messages of 1 KiB from memory
//   out-raw-spool  raw client reading a spool of N elements (lock + get + JSON.parse, remove once confirmed)
//   out-agent      the command draining that spool (--incoming-queue --remove --reliable --window W)
//   in-raw         raw subscriber with prefetch P (client acks), acks only
//   in-raw-spool   raw subscriber + durable spool add (fsync) per message before its ack
//   in-agent       the command with its default options (--reliable --count N), the spool fsync'd (its default)
// The queue -> broker cases send to a topic nobody subscribes to (the broker routes and confirms, and keeps nothing);
// the broker -> queue cases each drain a fresh queue that the parent filled (untimed) with exactly N messages.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DQS, Message } = require('../../packages/message/dist');

const MEASURE = path.join(__dirname, 'measure.js');
const BODY_SIZE = 1024;
const TARGETS = { cpu: 1.15, rate: 0.85, rssMb: 120 };

function usage(name) {
  return (
    `usage: node bench/${name}.js [--count N] [--window W] [--prefetch P] [--reps R] [--dir PATH] [--quick]\n` +
    '         [--only CASE,...] [--backlog N,...] [--big] [--no-backlog] [--port PORT] [--profile DIR]\n' +
    `cases: ${CASE_KEYS.join(', ')}`
  );
}

const CASE_KEYS = ['out-raw', 'out-raw-spool', 'out-agent', 'in-raw', 'in-raw-spool', 'in-agent'];

function parseArgs(name, argv) {
  const o = {
    count: 20000,
    window: 1000,
    prefetch: 100,
    reps: 3,
    dir: undefined,
    only: undefined,
    backlog: [20000, 100000],
    big: false,
    port: undefined,
    profile: undefined,
  };
  const int = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
    return n;
  };
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') o.count = int(a, argv[++i]);
    else if (a === '--window') o.window = int(a, argv[++i]);
    else if (a === '--prefetch') o.prefetch = int(a, argv[++i]);
    else if (a === '--reps') o.reps = int(a, argv[++i]);
    else if (a === '--port') o.port = int(a, argv[++i]);
    else if (a === '--dir') o.dir = argv[++i];
    else if (a === '--profile') o.profile = path.resolve(argv[++i] ?? '.');
    else if (a === '--only') o.only = (argv[++i] ?? '').split(',');
    else if (a === '--backlog') {
      o.backlog = (argv[++i] ?? '').split(',').map((v) => int(a, v));
      o.backlogAsked = true;
    } else if (a === '--big') o.big = true;
    else if (a === '--no-backlog') o.backlog = [];
    else if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') {
      console.log(usage(name));
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}\n${usage(name)}`);
  }
  if (o.only) for (const k of o.only) if (!CASE_KEYS.includes(k)) throw new Error(`--only: no case ${k}\n${usage(name)}`);
  if (quick) {
    o.count = Math.min(o.count, 2000);
    o.reps = 1;
    o.backlog = [];
  }
  if (o.big && !o.backlog.includes(1_000_000)) o.backlog.push(1_000_000);
  // The benchmark's targets are for a tmpfs spool: /dev/shm unless told otherwise.
  o.dir ??= fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return o;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function countFiles(dir) {
  // Element files: 14 hex digits in 8-hex-digit buckets (no .tmp, no .lck).
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const bucket of fs.readdirSync(dir)) {
    if (!/^[0-9a-f]{8}$/.test(bucket)) continue;
    for (const f of fs.readdirSync(path.join(dir, bucket))) if (/^[0-9a-f]{14}$/.test(f)) n++;
  }
  return n;
}

/** Fills a fresh spool with `n` serialized messages for `destination` (untimed, addMany). */
async function fillSpool(dir, n, destination) {
  const spool = new DQS(dir);
  const serialized = new Message({ header: { destination }, body: Buffer.alloc(BODY_SIZE, 'x') }).serialize();
  const batch = new Array(1000).fill(serialized);
  for (let i = 0; i < n; i += 1000) await spool.addMany(i + 1000 <= n ? batch : batch.slice(0, n - i));
}

/** Runs `node -r measure.js ...args` and returns its measurement; rejects if it fails. */
function measured(args, nodeArgs = []) {
  const file = path.join(os.tmpdir(), `bench-measure-${process.pid}-${Math.random().toString(16).slice(2)}.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '-r', MEASURE, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BENCH_MEASURE: file },
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`${path.basename(args[0])} exited ${code}:\n${err.trim()}`);
        resolve(JSON.parse(fs.readFileSync(file, 'utf8')));
      } catch (e) {
        reject(e);
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  });
}

const fmt = (v, digits = 0) =>
  v === undefined || Number.isNaN(v)
    ? 'n/a'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function printTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [i, row] of rows.entries()) {
    console.log(
      row
        .map((c, j) => (j < 3 || j >= row.length - 2 ? String(c).padEnd(widths[j]) : String(c).padStart(widths[j])))
        .join('  ')
        .trimEnd(),
    );
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

const AUTH = 'plain name=guest pass=guest';

/** The command draining a spool: --reliable --remove, the window of the raw client. */
function agentOutArgs(uri, c, dir) {
  return ['--incoming-queue', `path=${dir}`, '--remove', '--outgoing-broker-uri', uri, '--outgoing-broker-auth', AUTH].concat([
    '--reliable',
    '--window',
    String(c.window),
  ]);
}

/** The command filling a spool with its defaults: prefetch 100 (both commands, for --reliable --count N >= 100), the
 * default window, the queue fsync'd (--reliable). */
function agentInArgs(uri, c, destination, dir) {
  return ['--incoming-broker-uri', uri, '--incoming-broker-auth', AUTH, '--subscribe', `destination=${destination}`].concat([
    '--outgoing-queue',
    `path=${dir}`,
    '--reliable',
    '--count',
    String(c.count),
  ]);
}

/**
 * Runs the benchmark of one protocol. `p` gives: name, raw (the raw client script), agent (the command's main.js),
 * clientLabel, startBroker() -> {port, stop()}, fillBroker(port, destination, n) (untimed, exactly n messages),
 * outDestination, inDestination(i), uri(port) (the command's broker URI).
 */
async function run(p, argv) {
  const o = parseArgs(p.name, argv);
  if (!fs.existsSync(p.agent)) throw new Error(`${p.agent} missing: run npm run build first`);
  const cases = o.only ?? CASE_KEYS;
  const base = fs.mkdtempSync(path.join(path.resolve(o.dir), `bench-${p.name}-`));
  let broker;
  const cleanup = async () => {
    fs.rmSync(base, { recursive: true, force: true });
    await broker?.stop();
  };
  process.on('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });
  const started = performance.now();
  const startedAt = new Date();
  const loadBefore = loadavg();
  let dirs = 0;
  const newDir = (what) => path.join(base, `${what}-${dirs++}`);
  let queues = 0;

  try {
    let port = o.port;
    if (port === undefined) {
      process.stderr.write('starting RabbitMQ...\n');
      broker = await p.startBroker();
      port = broker.port;
      process.stderr.write(`  up, port ${port}\n`);
    }
    const ctx = { port, count: o.count, window: o.window, prefetch: o.prefetch, bodySize: BODY_SIZE };
    const agentNodeArgs = o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];

    /** One run of a case with `n` messages: its measurement and the directories to remove. */
    const once = async (key, n) => {
      const c = { ...ctx, count: n };
      const raw = (extra) => measured([p.raw, JSON.stringify({ ...c, ...extra })]);
      if (key === 'out-raw') return raw({ case: 'out', destination: p.outDestination });
      if (key === 'out-raw-spool' || key === 'out-agent') {
        const dir = newDir('out');
        await fillSpool(dir, n, p.outDestination);
        try {
          const m =
            key === 'out-agent'
              ? await measured([p.agent, ...agentOutArgs(p.uri(port), c, dir)], agentNodeArgs)
              : await raw({ case: 'out-spool', destination: p.outDestination, dir });
          const left = countFiles(dir);
          if (left !== 0) throw new Error(`${key}: ${left} elements left in the spool`);
          return m;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
      const destination = p.inDestination(queues++);
      await p.fillBroker(port, destination, n);
      if (key === 'in-raw') return raw({ case: 'in', destination });
      const dir = newDir('in');
      try {
        const m =
          key === 'in-agent'
            ? await measured([p.agent, ...agentInArgs(p.uri(port), c, destination, dir)], agentNodeArgs)
            : await raw({ case: 'in-spool', destination, dir });
        const got = countFiles(dir);
        if (got !== n) throw new Error(`${key}: ${got} elements in the spool, expected ${n}`);
        return m;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };

    console.log(
      `${p.clientLabel}; node ${process.version}; ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Linux ${os.release()}`,
    );
    console.log(`broker: ${broker ? 'private RabbitMQ' : `already running on port ${port}`}; spools under ${base}`);
    console.log(
      `${o.count} messages of ${BODY_SIZE} B per run; queue -> broker window ${o.window}; broker -> queue raw prefetch ` +
        `${o.prefetch}, agent defaults; median of ${o.reps} alternating rounds`,
    );
    console.log(`started ${startedAt.toISOString()}, load average ${loadBefore}\n`);

    const results = new Map(cases.map((k) => [k, []]));
    for (let rep = 0; rep < o.reps; rep++) {
      for (const key of cases) {
        const m = await once(key, o.count);
        results.get(key).push(m);
        process.stderr.write(
          `  round ${rep + 1}/${o.reps} ${key}: ${fmt((o.count / m.wallMs) * 1000)} msg/s, ` +
            `${fmt(m.cpuUs / o.count, 1)} us CPU/msg, ${fmt(m.maxRssKb / 1024, 1)} MB\n`,
        );
      }
    }

    const summary = (key) => {
      const ms = results.get(key);
      if (!ms?.length) return undefined;
      return {
        rate: median(ms.map((m) => (o.count / m.wallMs) * 1000)),
        cpu: median(ms.map((m) => m.cpuUs / o.count)),
        sys: median(ms.map((m) => m.sysUs / o.count)),
        rss: median(ms.map((m) => m.maxRssKb / 1024)),
        startup: median(ms.map((m) => m.startupCpuUs / 1000)),
      };
    };
    const LABELS = {
      'out-raw': `raw ${p.client} from memory`,
      'out-raw-spool': `raw ${p.client} + spool consume`,
      'out-agent': `${p.command} spool -> broker`,
      'in-raw': `raw ${p.client} subscriber, acks only`,
      'in-raw-spool': `raw ${p.client} subscriber + durable spool add`,
      'in-agent': `${p.command} broker -> spool, defaults`,
    };
    const rows = [
      [
        'direction',
        'case',
        'what',
        'msg/s',
        'CPU us/msg',
        'of which sys',
        'peak RSS MB',
        'start-up CPU ms',
        'vs raw+spool: CPU',
        'rate',
      ],
    ];
    const verdicts = [];
    for (const key of cases) {
      const s = summary(key);
      const ref = key.endsWith('-agent') ? summary(key.replace('-agent', '-raw-spool')) : undefined;
      rows.push([
        key.startsWith('out') ? 'queue -> broker' : 'broker -> queue',
        key,
        LABELS[key],
        fmt(s.rate),
        fmt(s.cpu, 1),
        fmt(s.sys, 1),
        fmt(s.rss, 1),
        fmt(s.startup),
        ref ? `${(s.cpu / ref.cpu).toFixed(2)}x` : '',
        ref ? `${(s.rate / ref.rate).toFixed(2)}x` : '',
      ]);
      if (ref) {
        const dir = key.startsWith('out') ? 'queue -> broker' : 'broker -> queue';
        verdicts.push([
          `${dir} CPU/msg <= ${TARGETS.cpu}x raw + spool`,
          `${(s.cpu / ref.cpu).toFixed(2)}x`,
          s.cpu / ref.cpu <= TARGETS.cpu,
        ]);
        verdicts.push([
          `${dir} msg/s >= ${TARGETS.rate}x raw + spool`,
          `${(s.rate / ref.rate).toFixed(2)}x`,
          s.rate / ref.rate >= TARGETS.rate,
        ]);
      }
    }
    printTable(rows);
    console.log(
      `\nevery round (msg/s, CPU us/msg): ${cases
        .map(
          (k) =>
            `${k} ${results
              .get(k)
              .map((m) => `${fmt((o.count / m.wallMs) * 1000)}/${fmt(m.cpuUs / o.count)}`)
              .join(' ')}`,
        )
        .join('; ')}`,
    );

    // The agent's memory against the backlog: a spool of S elements drained, and S messages at the broker written
    // into a spool. Peak RSS must not grow with S.
    // With --only, the series runs only when asked for by --backlog or --big.
    const backlog = o.only === undefined || o.backlogAsked || o.big ? o.backlog : [];
    if (backlog.length > 0) {
      console.log('\nbacklog series: the agent alone, one run per size');
      const brows = [['backlog', 'spool -> broker msg/s', 'peak RSS MB', 'broker -> spool msg/s', 'peak RSS MB']];
      for (const n of backlog) {
        process.stderr.write(`  backlog ${fmt(n)}...\n`);
        const out = await once('out-agent', n);
        const inn = await once('in-agent', n);
        brows.push([
          fmt(n),
          fmt((n / out.wallMs) * 1000),
          fmt(out.maxRssKb / 1024, 1),
          fmt((n / inn.wallMs) * 1000),
          fmt(inn.maxRssKb / 1024, 1),
        ]);
        for (const [what, m] of [
          ['spool -> broker', out],
          ['broker -> spool', inn],
        ])
          verdicts.push([
            `peak RSS <= ${TARGETS.rssMb} MB, ${what}, backlog ${fmt(n)}`,
            `${fmt(m.maxRssKb / 1024, 1)} MB`,
            m.maxRssKb / 1024 <= TARGETS.rssMb,
          ]);
      }
      printTable(brows);
    }
    console.log('\ntargets (issue 10):');
    for (const [what, value, met] of verdicts) console.log(`  ${met ? 'met    ' : 'NOT MET'}  ${what}: ${value}`);
    console.log(
      `\nfinished ${new Date().toISOString()}, ${((performance.now() - started) / 1000).toFixed(0)} s; load average ${loadBefore} at the start, ${loadavg()} at the end`,
    );
  } finally {
    await cleanup();
  }
}

module.exports = { BODY_SIZE, run };
