#!/usr/bin/env node
// The main job, on an embedded default (no broker needed at this stage): a producer spools messages
// into a directory queue, a relay moves them into a second queue, and a handler drains that one.
// When Debian's python3-dirq is installed, the relay is a python-dirq process, so the two
// implementations share both spools for real. The demo ends with counts that show nothing was lost.

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
let dirq;
try {
  dirq = require(path.join(root, 'packages/dirq/dist'));
} catch {
  console.error('demo: the libraries are not built; run `npm ci` (or `npm run build`) first');
  process.exit(1);
}
const { QueueSimple } = dirq;

const COUNT = Number(process.env.DEMO_COUNT ?? 2000);
const PYTHON = '/usr/bin/python3';
const havePython =
  process.env.DEMO_RELAY !== 'node' && spawnSync(PYTHON, ['-c', 'import dirq.QueueSimple'], { stdio: 'ignore' }).status === 0;

const RELAY_PY = `
import sys, time, json
from dirq.QueueSimple import QueueSimple
src, dst, count = QueueSimple(sys.argv[1]), QueueSimple(sys.argv[2], granularity=1), int(sys.argv[3])
moved = 0
while moved < count:
    progressed = False
    for name in src:
        if src.lock(name):
            dst.add(src.get(name))
            src.remove(name)
            moved += 1
            progressed = True
    if not progressed:
        time.sleep(0.01)
print(json.dumps({"moved": moved}))
`;

const RELAY_JS = `
const { QueueSimple } = require(process.argv[1]);
const [src, dst] = [new QueueSimple(process.argv[2]), new QueueSimple(process.argv[3], { granularity: 1 })];
const count = Number(process.argv[4]);
(async () => {
  let moved = 0;
  for await (const name of src.watch({ fromStart: true, rescanInterval: 200 })) {
    if (!(await src.lock(name))) continue;
    await dst.add(await src.get(name));
    await src.remove(name);
    if (++moved === count) break;
  }
  console.log(JSON.stringify({ moved }));
})();
`;

function message(seq) {
  const body = crypto.randomBytes(16 + (seq % 200)).toString('base64');
  const sum = crypto.createHash('md5').update(body).digest('hex');
  return JSON.stringify({ header: { seq: String(seq), md5: sum }, body, text: true });
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-demo-'));
  const outgoing = path.join(work, 'outgoing');
  const incoming = path.join(work, 'incoming');
  const producer = new QueueSimple(outgoing, { fsync: true });
  const handlerQueue = new QueueSimple(incoming, { granularity: 1 });
  console.log(`demo: ${COUNT} messages: producer -> ${outgoing} -> relay -> ${incoming} -> handler`);
  console.log(
    havePython
      ? 'demo: relay = python-dirq (Debian python3-dirq), sharing both spools with msgbricks'
      : 'demo: relay = msgbricks (for python-dirq in the middle: apt-get install -y python3-dirq)',
  );
  const started = performance.now();

  // The relay runs in its own process, as a separate tool would.
  const relay = havePython
    ? spawn(PYTHON, ['-c', RELAY_PY, outgoing, incoming, String(COUNT)], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, ['-e', RELAY_JS, path.join(root, 'packages/dirq/dist'), outgoing, incoming, String(COUNT)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
  let relayOut = '';
  relay.stdout.on('data', (d) => {
    relayOut += d;
  });
  const relayDone = new Promise((resolve) => relay.on('exit', resolve));

  // The handler: wakes up on new elements, lock -> get -> check -> remove.
  const received = new Map();
  let corrupt = 0;
  const handler = (async () => {
    const ac = new AbortController();
    for await (const name of handlerQueue.watch({ fromStart: true, rescanInterval: 200, signal: ac.signal })) {
      if (!(await handlerQueue.lock(name))) continue;
      const msg = JSON.parse((await handlerQueue.get(name)).toString('utf8'));
      const ok = crypto.createHash('md5').update(msg.body).digest('hex') === msg.header.md5;
      if (!ok) corrupt++;
      received.set(msg.header.seq, (received.get(msg.header.seq) ?? 0) + 1);
      await handlerQueue.remove(name);
      if (received.size === COUNT) ac.abort();
    }
  })();

  // The producer: batches made durable with one file-system sync each.
  for (let seq = 0; seq < COUNT; seq += 100) {
    const batch = [];
    for (let i = seq; i < Math.min(COUNT, seq + 100); i++) batch.push(message(i));
    await producer.addMany(batch);
  }
  const produced = performance.now();

  const timeout = setTimeout(
    () => {
      console.error(`demo: timed out waiting for the handler (handled ${received.size} of ${COUNT})`);
      process.exit(1);
    },
    Number(process.env.DEMO_TIMEOUT ?? 120_000),
  );
  await handler;
  const relayCode = await relayDone;
  clearTimeout(timeout);
  const elapsed = (performance.now() - started) / 1000;
  const duplicates = [...received.values()].filter((n) => n > 1).length;
  const missing = COUNT - received.size;
  const moved = relayCode === 0 ? JSON.parse(relayOut.trim()).moved : 'relay failed';

  const stats = spawnSync(process.execPath, [path.join(root, 'agents/dirq/dist/main.js'), 'stats', outgoing], {
    encoding: 'utf8',
  });
  console.log(`demo: produced ${COUNT} in ${((produced - started) / 1000).toFixed(2)} s (fsync on)`);
  console.log(`demo: relayed  ${moved}`);
  console.log(`demo: handled  ${received.size} (missing ${missing}, duplicates ${duplicates}, corrupt ${corrupt})`);
  console.log(`demo: end to end ${elapsed.toFixed(2)} s, ${Math.round(COUNT / elapsed)} messages/s`);
  console.log(`demo: outgoing spool after the run (dirq stats):\n${stats.stdout.trimEnd().replace(/^/gm, '  ')}`);
  fs.rmSync(work, { recursive: true, force: true });
  const ok = missing === 0 && duplicates === 0 && corrupt === 0 && relayCode === 0;
  console.log(ok ? 'demo: OK, nothing lost' : 'demo: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.error(`demo: ${err.message}`);
  process.exit(1);
});
