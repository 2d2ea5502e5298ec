// What the benchmarks that run each case in its own process share (bench/handler.js, bench/megabus.js): running a
// case script that prints one JSON line, medians, number formatting, the machine's load, the results table.

const { spawn } = require('node:child_process');
const os = require('node:os');

/** Runs `node SCRIPT SPEC-AS-JSON` and resolves to the JSON line it printed; rejects with its stderr's end. */
function runCase(script, spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${spec.case}: exit ${code}\n${err}`)),
    );
  });
}

/** A command-line option's value as a positive integer, or an error naming the option. */
function positiveInt(flag, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
  return n;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const fmt = (v, d = 0) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Prints rows (the first one the heading): the first column to the left, the figures to the right. */
function printRows(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [i, row] of rows.entries()) {
    console.log(row.map((c, j) => (j === 0 ? String(c).padEnd(widths[j]) : String(c).padStart(widths[j]))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

/**
 * The table row of one case's measurements (`count`, `wallMs`, `cpuUs`, `sysUs`, `maxRssKb` each): median rate and
 * CPU per message, the peak RSS of all; and `{rate, cpu}` for ratios.
 */
function summarise(label, ms) {
  const rate = median(ms.map((m) => (m.count / m.wallMs) * 1000));
  const cpu = median(ms.map((m) => m.cpuUs / m.count));
  const sys = median(ms.map((m) => m.sysUs / m.count));
  const rss = Math.max(...ms.map((m) => m.maxRssKb)) / 1024;
  return { row: [label, fmt(rate), fmt(cpu, 1), fmt(sys, 1), fmt(rss, 1)], rate, cpu };
}

const HEADING = ['case', 'msg/s', 'CPU us/msg', 'of which sys', 'peak RSS MB'];

/** Prints the table of every case (`{key, label}`) from its measurements (`results[key]`); returns `{key: {rate, cpu}}`. */
function report(cases, results) {
  const rows = [HEADING];
  const summary = {};
  for (const c of cases) {
    const { row, rate, cpu } = summarise(c.label, results[c.key]);
    summary[c.key] = { rate, cpu };
    rows.push(row);
  }
  printRows(rows);
  return summary;
}

module.exports = { fmt, loadavg, median, positiveInt, report, runCase };
