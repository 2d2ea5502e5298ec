// Benchmark: what running the user's callback in a worker thread (WorkerCallback, as stompclt does) costs per
// message, against the same code run on the pipeline's thread (inlineCallback), with a trivial callback.
//
//   npx tsc -b && node bench/callback.js [--count N] [--size BYTES] [--reps R]
//
// Two settings: "memory" runs the pipeline between an in-memory incoming module and an outgoing module that takes
// everything at once, so that the callback is all there is to measure; "spool" moves a DQS into a DQS (fsync off), a
// queue -> queue transfer without its disk syncs. Every figure is the median of R runs; text and binary bodies alternate.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { inlineCallback, QueueIncoming, QueueOutgoing, runPipeline, WorkerCallback } = require('../packages/agent/dist');
const { DQS, Message } = require('../packages/message/dist');

function parseArgs(argv) {
  const o = { count: 20000, size: 1024, reps: 5 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o)) throw new Error(`unknown argument: ${argv[i]}`);
    o[key] = Number(argv[++i]);
  }
  return o;
}

const CODE = "hdr.checked = 'yes';";

function messages(count, size) {
  return Array.from({ length: count }, (_, i) => {
    const body = i % 2 ? Buffer.alloc(size, i & 0xff) : 'x'.repeat(size);
    return new Message({ header: { destination: '/queue/bench', seq: String(i) }, body });
  });
}

function memoryIncoming(list) {
  let i = 0;
  return {
    description: 'memory',
    open: async () => undefined,
    close: async () => undefined,
    next: async () => (i < list.length ? { id: String(i), message: list[i++] } : null),
    ack: async () => undefined,
    release: async () => undefined,
  };
}

const sink = { description: 'sink', open: async () => undefined, close: async () => undefined, send: async () => undefined };

async function memoryRun(list, callback) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const stats = await runPipeline(memoryIncoming(list), sink, { callback });
  const cpu = process.cpuUsage(cpu0);
  if (stats.sent !== list.length) throw new Error(`sent ${stats.sent} of ${list.length}`);
  return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function spoolRun(list, callback, dir) {
  const a = path.join(dir, `a-${Math.random()}`);
  const b = path.join(dir, `b-${Math.random()}`);
  const q = new DQS(a);
  for (let i = 0; i < list.length; i += 1000) await q.addMany(list.slice(i, i + 1000).map((m) => m.serialize()));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const stats = await runPipeline(new QueueIncoming(new DQS(a), { remove: true }), new QueueOutgoing(new DQS(b)), {
    callback,
  });
  const cpu = process.cpuUsage(cpu0);
  if (stats.sent !== list.length) throw new Error(`sent ${stats.sent} of ${list.length}`);
  fs.rmSync(a, { recursive: true, force: true });
  fs.rmSync(b, { recursive: true, force: true });
  return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const list = messages(o.count, o.size);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-callback-'));
  const kinds = {
    none: async () => undefined,
    'in-thread': async () => inlineCallback(CODE),
    worker: async () => WorkerCallback.load({ code: CODE }),
  };
  try {
    console.log(`${o.count} messages of ${o.size} bytes, median of ${o.reps} runs, callback: ${CODE}`);
    console.log('setting | callback  | msg/s   | us/msg (wall) | process CPU us/msg (all threads)');
    for (const [setting, runOnce] of [
      ['memory', (cb) => memoryRun(list, cb)],
      ['spool', (cb) => spoolRun(list, cb, dir)],
    ]) {
      const results = {};
      for (let r = 0; r < o.reps; r++) {
        for (const [kind, make] of Object.entries(kinds)) {
          const cb = await make();
          const res = await runOnce(cb);
          await cb?.close?.();
          if (results[kind] === undefined) results[kind] = [];
          results[kind].push(res);
        }
      }
      for (const [kind, rs] of Object.entries(results)) {
        const ms = median(rs.map((x) => x.ms));
        const cpu = median(rs.map((x) => x.cpuMs));
        console.log(
          `${setting.padEnd(7)} | ${kind.padEnd(9)} | ${String(Math.round((o.count / ms) * 1000)).padStart(7)} | ${((ms * 1000) / o.count).toFixed(1).padStart(13)} | ${((cpu * 1000) / o.count).toFixed(1).padStart(6)}`,
        );
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
