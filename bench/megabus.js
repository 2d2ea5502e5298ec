// Benchmark: @msgbricks/megabus's Publisher and Consumer against minimal raw stompit clients doing the same work, on
// private RabbitMQ nodes (@msgbricks/test-support) behind one alias resolved by an injected static resolver; and the
// cost of client-side selector filtering (a selector that keeps half the messages, evaluated on every message).
// Every case runs in its own process, in alternating rounds (bench/lib/megabus-case.js). See docs/benchmarks.md.
//
//   npm run bench:megabus                   # 20,000 messages of 1 KiB per case, 3 rounds, two RabbitMQ nodes
//   npm run bench:megabus -- --quick        # 2,000 messages, 1 round: a smoke test
//   options: --count N --reps R --window W --prefetch P --nodes 1|2

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startRabbitMQ } = require('../packages/test-support');
const rounds = require('./lib/rounds');

const CASE = path.join(__dirname, 'lib', 'megabus-case.js');
const SELECTOR = "state = 'draining'";

function parseArgs(argv) {
  const o = { count: 20_000, reps: 3, window: 100, prefetch: 100, nodes: 2 };
  const int = rounds.positiveInt;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') o.count = int(a, argv[++i]);
    else if (a === '--reps') o.reps = int(a, argv[++i]);
    else if (a === '--window') o.window = int(a, argv[++i]);
    else if (a === '--prefetch') o.prefetch = int(a, argv[++i]);
    else if (a === '--nodes') o.nodes = int(a, argv[++i]);
    else if (a === '--quick') Object.assign(o, { count: 2000, reps: 1 });
    else throw new Error(`unknown argument: ${a} (--count N --reps R --window W --prefetch P --nodes N --quick)`);
  }
  return o;
}

const runCase = (spec) => rounds.runCase(CASE, spec);

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-megabus-'));
  const nodes = await Promise.all(Array.from({ length: o.nodes }, () => startRabbitMQ()));
  const ports = nodes.map((b) => b.ports.stomp);
  let unique = 0;
  const destination = () => `/queue/bench-megabus-${process.pid}-${unique++}`;
  const base = { ports, count: o.count, window: o.window, prefetch: o.prefetch, dir };
  /** Puts the case's messages on the brokers first, shared out evenly (raw, not measured). */
  const fill = async (dest) => {
    const per = Math.ceil(o.count / ports.length);
    await Promise.all(
      ports.map((port, i) =>
        runCase({ ...base, case: 'publish-raw', ports: [port], destination: dest, count: Math.min(per, o.count - i * per) }),
      ),
    );
  };
  const cases = [
    { key: 'pubRaw', label: 'publish: raw stompit, receipts', spec: { case: 'publish-raw' } },
    { key: 'pub', label: 'publish: Publisher.send()', spec: { case: 'publish-megabus' } },
    { key: 'subRaw', label: 'consume: raw stompit, every broker', spec: { case: 'consume-raw' }, filled: true },
    { key: 'sub', label: 'consume: Consumer', spec: { case: 'consume-megabus' }, filled: true },
    {
      key: 'subRawSel',
      label: 'consume: raw stompit + matches()',
      spec: { case: 'consume-raw', selector: SELECTOR },
      filled: true,
    },
    {
      key: 'subSel',
      label: 'consume: Consumer, selector client-side',
      spec: { case: 'consume-megabus', selector: SELECTOR },
      filled: true,
    },
  ];
  const results = Object.fromEntries(cases.map((c) => [c.key, []]));
  console.log(
    `${o.count} messages of 1 KiB per case, ${o.reps} alternating rounds, ${o.nodes} RabbitMQ node(s) behind one alias, ` +
      `window ${o.window}, prefetch ${o.prefetch}; selector cases: "${SELECTOR}" AND hostgroup_selector eos/% (keeps half)`,
  );
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, load average at start ${rounds.loadavg()}\n`);
  try {
    for (let r = 0; r < o.reps; r++) {
      for (const c of cases) {
        const dest = destination();
        if (c.filled) await fill(dest);
        const m = await runCase({ ...base, ...c.spec, destination: dest });
        if (m.count !== o.count) throw new Error(`${c.key}: ${m.count} messages of ${o.count}`);
        if (c.spec.selector !== undefined && m.selected !== o.count / 2)
          throw new Error(`${c.key}: selected ${m.selected} of ${o.count}, expected half`);
        results[c.key].push(m);
      }
    }
    const summary = rounds.report(cases, results);
    const ratio = (a, b, k) => (summary[a][k] / summary[b][k]).toFixed(2);
    console.log(
      `\nPublisher / raw: rate ${ratio('pub', 'pubRaw', 'rate')}x, CPU per message ${ratio('pub', 'pubRaw', 'cpu')}x` +
        `\nConsumer / raw: rate ${ratio('sub', 'subRaw', 'rate')}x, CPU per message ${ratio('sub', 'subRaw', 'cpu')}x` +
        `\nclient-side selector: Consumer ${rounds.fmt(summary.subSel.cpu - summary.sub.cpu, 1)} us/msg more, ` +
        `raw ${rounds.fmt(summary.subRawSel.cpu - summary.subRaw.cpu, 1)} us/msg more (half the messages filtered, not handed over); ` +
        `matches() itself ${rounds.fmt(rounds.median(results.subRawSel.map((m) => m.matchUs / m.count)), 2)} us/msg (timed in the raw client)`,
    );
    console.log(`load average at the end ${rounds.loadavg()}`);
  } finally {
    await Promise.all(nodes.map((b) => b.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
