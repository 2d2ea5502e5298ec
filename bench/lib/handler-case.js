// One case of bench/handler.js, in its own process: drains the spool at `dir` and prints, as one JSON line, the CPU
// (user + system, every thread) and wall time of the draining alone (modules loaded and queue opened before the
// clock starts), the messages handled and the process' peak RSS.
//
//   node bench/lib/handler-case.js '{"case": "raw" | "runner", "dir": PATH, "concurrency": C}'

const o = JSON.parse(process.argv[2]);
const { DQS, Message } = require('../../packages/message/dist');
const { consume } = require('../../packages/handler/dist');

/** The application's work: none (the message is looked at, so that nothing is optimised away). */
let bytes = 0;
function noop(message) {
  bytes += message.body.length;
}

/** The minimal hand-written loop: for each element in python-dirq's order, lock, get, parse, handle, remove. */
async function raw(q) {
  let n = 0;
  for await (const name of q) {
    if (!(await q.lock(name))) continue;
    noop(Message.deserialize(await q.get(name)));
    await q.remove(name);
    n++;
  }
  return n;
}

async function runner(q) {
  const c = consume(q, noop, {
    concurrency: o.concurrency ?? 1,
    drain: true,
    stopSignals: [],
    ...(o.readAhead ? { readAhead: o.readAhead } : {}),
  });
  return (await c.done).handled;
}

async function main() {
  const q = new DQS(o.dir);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const count = o.case === 'raw' ? await raw(q) : await runner(q);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({
      count,
      bytes,
      wallMs,
      cpuUs: cpu.user + cpu.system,
      sysUs: cpu.system,
      maxRssKb: process.resourceUsage().maxRSS,
      ...(process.env.MEM
        ? {
            mem: process.memoryUsage(),
            heap: require('node:v8')
              .getHeapSpaceStatistics()
              .map((s) => [s.space_name, Math.round(s.space_size / 1e6)]),
          }
        : {}),
    })}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
