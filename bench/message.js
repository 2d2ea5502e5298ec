// Benchmark: @msgbricks/message serialize() and deserialize() throughput.
//
//   npm run bench:message -- [--quick] [--runs N] [--seconds S]
//
// For each body size (1 KiB, 100 KiB), body type (text: random printable ASCII; binary: random bytes) and
// compression (none, zlib, lz4, snappy when installed), serialize and deserialize the same generated message over and
// over for about --seconds (default 1; 0.2 with --quick) and report MB/s of body bytes (1 MB = 10^6 bytes), the
// median of --runs runs (default 3; 1 with --quick). Messages carry 5 headers of python's default sizes.
// Everything happens in memory: no file system is involved.

const { Generator, availableCodecs } = require('../packages/message/dist');
const { Message } = require('../packages/message/dist');

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
const SIZES = [1024, 100 * 1024];
const KINDS = [
  { name: 'text', options: { text: 1, bodyEntropy: 3 } },
  { name: 'binary', options: { text: 0, bodyEntropy: 4 } },
];
const COMPRESSIONS = [undefined, 'zlib', 'lz4', 'snappy'];

let sink = 0; // keeps results alive so nothing is optimised away

/** Operations per second of `fn`, timed over about SECONDS after a calibration of the iteration count. */
function opsPerSecond(fn) {
  let n = 1;
  for (;;) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    if (s > 0.05) {
      n = Math.max(1, Math.round((n * SECONDS) / s));
      break;
    }
    n *= 4;
  }
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return n / (Number(process.hrtime.bigint() - t) / 1e9);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x) {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const available = new Set(availableCodecs());
const rows = [];
console.log(`node ${process.version}, ${RUNS} run(s) of ~${SECONDS} s each; MB/s of body bytes (median)`);
console.log('');
console.log('| body | type | compression | serialized bytes | serialize MB/s | deserialize MB/s |');
console.log('|---|---|---|---|---|---|');
for (const size of SIZES) {
  for (const kind of KINDS) {
    const msg = new Generator({ seed: 1, bodySize: size, headerCount: 5, ...kind.options }).message();
    for (const compression of COMPRESSIONS) {
      if (compression !== undefined && !available.has(compression)) continue;
      const opts = compression === undefined ? {} : { compression };
      const bytes = msg.serialize(opts);
      if (Message.deserialize(bytes).md5() !== msg.md5()) throw new Error('round trip failed');
      const ser = [];
      const de = [];
      for (let r = 0; r < RUNS; r++) {
        ser.push(opsPerSecond(() => (sink += msg.serialize(opts).length)));
        de.push(opsPerSecond(() => (sink += Message.deserialize(bytes).body.length)));
      }
      const row = {
        body: size >= 1024 ? `${size / 1024} KiB` : `${size} B`,
        type: kind.name,
        compression: compression ?? 'none',
        serialized: bytes.length,
        serialize: (median(ser) * size) / 1e6,
        deserialize: (median(de) * size) / 1e6,
      };
      rows.push(row);
      console.log(
        `| ${row.body} | ${row.type} | ${row.compression} | ${row.serialized} | ${fmt(row.serialize)} | ${fmt(row.deserialize)} |`,
      );
    }
  }
}
if (sink === -1) console.log(sink);
