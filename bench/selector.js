// Benchmark: @msgbricks/selector, matches() against a hand-written JavaScript predicate doing the same work.
//
//   npm run bench:selector -- [--quick] [--runs N] [--seconds S]
//
// For three realistic selectors, evaluations per second of Selector.matches over a rotating set of 64 headers (as a
// STOMP frame carries them: strings), and of a hand-written predicate with the same meaning for these headers (the
// "minimal raw client" of the comparison), the median of --runs runs (default 3; 1 with --quick) of about --seconds
// each (default 1; 0.2 with --quick); CPU time per evaluation (process.cpuUsage). Then the parse time of each selector
// (parse and compile, the cache cleared each time), and the first parse in a fresh process (loading the module
// included). Peak RSS of the run at the end.

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { clearSelectorCache, parseSelector } = require('../packages/selector/dist');

const args = process.argv.slice(2);
const quick = args.includes('--quick');
function numberArg(name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!(v > 0)) throw new Error(`${name}: expected a positive number`);
  return v;
}
const RUNS = numberArg('--runs', quick ? 1 : 3);
const SECONDS = numberArg('--seconds', quick ? 0.2 : 1);

// Hand-written predicates: the same answers for these headers (checked below), without ActiveMQ's generality.
const num = (s) => (s !== undefined && /^[+-]?[0-9]+$/.test(s) ? Number(s) : Number.NaN);
const CASES = [
  {
    name: 'state/prio/hostgroup',
    text: "state = 'production' AND (prio > 3 OR hostgroup LIKE 'castor/%')",
    hand: (h) => h.state === 'production' && (num(h.prio) > 3 || h.hostgroup?.startsWith('castor/') === true),
  },
  {
    name: 'IN and IS NOT NULL',
    text: "kind IN ('alarm', 'warning', 'error') AND site IS NOT NULL AND site <> 'CERN-TEST'",
    hand: (h) =>
      (h.kind === 'alarm' || h.kind === 'warning' || h.kind === 'error') && h.site !== undefined && h.site !== 'CERN-TEST',
  },
  {
    name: 'numeric range, NOT LIKE',
    text: "size BETWEEN 1000 AND 50000 AND NOT (node LIKE 'test%') AND JMSPriority >= 4",
    hand: (h) => {
      const n = num(h.size);
      const p = h.priority === undefined ? 4 : num(h.priority);
      return n >= 1000 && n <= 50000 && h.node !== undefined && !h.node.startsWith('test') && p >= 4;
    },
  },
];

const STATES = ['production', 'devel', 'test'];
const TYPES = ['alarm', 'warning', 'error', 'info'];
const HEADERS = Array.from({ length: 64 }, (_, i) => {
  const h = {
    destination: '/queue/monitoring',
    'message-id': `ID:bench-${i}`,
    state: STATES[i % 3],
    prio: String(i % 7),
    kind: TYPES[i % 4],
    size: String((i * 997) % 70000),
    node: i % 5 === 0 ? `test${i}` : `node${i}.cern.ch`,
    priority: String(i % 10),
  };
  if (i % 4 !== 1) h.hostgroup = i % 2 ? 'castor/disk' : 'eos/fst';
  if (i % 6 !== 0) h.site = i % 7 === 0 ? 'CERN-TEST' : 'CERN-PROD';
  return h;
});

let sink = 0;

function measure(fn) {
  let n = 1;
  for (;;) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (fn(HEADERS[i & 63])) sink++;
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    if (s > 0.05) {
      n = Math.max(1, Math.round((n * SECONDS) / s));
      break;
    }
    n *= 4;
  }
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (fn(HEADERS[i & 63])) sink++;
  const wall = Number(process.hrtime.bigint() - t) / 1e9;
  const used = process.cpuUsage(cpu);
  return { rate: n / wall, cpuNs: ((used.user + used.system) * 1000) / n };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const M = (x) => `${(x / 1e6).toFixed(1)} M/s`;

console.log(`node ${process.version}, ${RUNS} run(s) of ~${SECONDS} s; 64 rotating headers`);
console.log('| selector | matches() | CPU/eval | hand-written JS | CPU/eval | parse + compile |');
console.log('|---|---|---|---|---|---|');
for (const c of CASES) {
  const selector = parseSelector(c.text);
  for (const h of HEADERS) {
    if (selector.matches(h) !== c.hand(h)) throw new Error(`${c.name}: the predicates disagree on ${JSON.stringify(h)}`);
  }
  const mine = [];
  const hand = [];
  for (let r = 0; r < RUNS; r++) {
    mine.push(measure((h) => selector.matches(h)));
    hand.push(measure(c.hand));
  }
  const parses = [];
  for (let r = 0; r < (quick ? 200 : 2000); r++) {
    clearSelectorCache();
    const t = process.hrtime.bigint();
    parseSelector(c.text);
    parses.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  console.log(
    `| ${c.name} | ${M(median(mine.map((m) => m.rate)))} | ${median(mine.map((m) => m.cpuNs)).toFixed(0)} ns | ` +
      `${M(median(hand.map((m) => m.rate)))} | ${median(hand.map((m) => m.cpuNs)).toFixed(0)} ns | ${median(parses).toFixed(1)} us |`,
  );
}
const firsts = [];
for (let r = 0; r < (quick ? 1 : 3); r++) {
  const code = `const t=process.hrtime.bigint();require(${JSON.stringify(path.join(__dirname, '../packages/selector/dist'))}).parseSelector(${JSON.stringify(CASES[0].text)});console.log(Number(process.hrtime.bigint()-t)/1e6)`;
  const r2 = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  firsts.push(Number(r2.stdout));
}
console.log(`first parse in a fresh process (module load included): ${median(firsts).toFixed(1)} ms`);
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB${sink < 0 ? '' : ''}`);
