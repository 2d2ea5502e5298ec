#!/usr/bin/env node
// The main job. When the private test brokers are available (@msgbricks/test-support, docs/brokers.md): a producer spools
// messages into a directory queue, `stompclt` sends them to a private RabbitMQ, the broker is restarted in the
// middle (the spool grows meanwhile), a second `stompclt` drains the broker into another queue and a handler
// consumes it. Without the brokers (not root, packages missing), the broker-free pipeline: a relay (python-dirq
// when Debian's python3-dirq is installed) between the two spools. Both end with counts that show nothing was lost.

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** producer -> DQS -> stompclt -> RabbitMQ (restarted midway) -> stompclt -> DQS -> handler. */
async function brokerDemo(brokers) {
  const { DQS, Message } = require(path.join(root, 'packages/message/dist'));
  const CLI = path.join(root, 'agents/stompclt/dist/main.js');
  const count = Number(process.env.DEMO_COUNT ?? 3000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-demo-'));
  const outgoing = path.join(work, 'outgoing');
  const incoming = path.join(work, 'incoming');
  fs.mkdirSync(outgoing);
  fs.mkdirSync(incoming);
  console.log('demo: starting a private RabbitMQ (@msgbricks/test-support)...');
  const rabbit = await brokers.startRabbitMQ();
  const agents = [];
  try {
    const uri = `tcp://${rabbit.host}:${rabbit.ports.stomp}`;
    const auth = `plain name=${rabbit.user} pass=${rabbit.password}`;
    const destination = '/queue/msgbricks.demo';
    console.log(`demo: RabbitMQ up in ${(rabbit.startupMs / 1000).toFixed(1)} s at ${uri}`);
    console.log(
      `demo: ${count} messages: producer -> ${outgoing} -> stompclt -> RabbitMQ ${destination} -> stompclt -> ${incoming} -> handler`,
    );
    const agent = (name, args) => {
      const child = spawn(process.execPath, [CLI, ...args, '--reliable', '--statistics'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      child.stdout.on('data', (d) => {
        log += d;
      });
      child.stderr.on('data', (d) => {
        log += d;
      });
      const done = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      const a = { name, child, done, log: () => log };
      agents.push(a);
      return a;
    };
    const reconnect = 'initial-delay=0.1 max-delay=1';
    agent('sender', [
      '--incoming-queue',
      `path=${outgoing}`,
      '--loop',
      '--remove',
      '--outgoing-broker-uri',
      uri,
      '--outgoing-broker-auth',
      auth,
      '--outgoing-broker-reconnect',
      reconnect,
    ]);
    agent('receiver', [
      '--incoming-broker-uri',
      uri,
      '--incoming-broker-auth',
      auth,
      '--subscribe',
      `destination=${destination}`,
      '--prefetch',
      '100',
      '--incoming-broker-reconnect',
      reconnect,
      '--outgoing-queue',
      `path=${incoming}`,
    ]);

    // The handler: lock -> read -> check -> remove, polling the incoming spool.
    const received = new Map();
    let corrupt = 0;
    let handling = true;
    const inQueue = new DQS(incoming);
    const handler = (async () => {
      while (handling) {
        let got = 0;
        for await (const name of inQueue) {
          if (!(await inQueue.lock(name))) continue;
          const m = await inQueue.getMessage(name);
          const seq = m.getHeader('seq');
          if (crypto.createHash('md5').update(m.body).digest('hex') !== m.getHeader('md5')) corrupt++;
          received.set(seq, (received.get(seq) ?? 0) + 1);
          await inQueue.remove(name);
          got++;
        }
        if (received.size === count) return;
        if (got === 0) await sleep(50);
      }
    })();

    // The producer: 100 messages every 100 ms; the broker is restarted once a third is spooled.
    const outQueue = new DQS(outgoing);
    const started = performance.now();
    let produced = 0;
    const producer = (async () => {
      while (produced < count) {
        for (let i = 0; i < 100 && produced < count; i++, produced++) {
          const body = crypto.randomBytes(16 + (produced % 200)).toString('base64');
          const md5 = crypto.createHash('md5').update(body).digest('hex');
          await outQueue.addMessage(
            new Message({ header: { destination, persistent: 'true', seq: String(produced), md5 }, body }),
          );
        }
        await sleep(100);
      }
    })();
    while (produced < count / 3) await sleep(50);
    console.log(`demo: ${produced} produced, ${received.size} handled: stopping RabbitMQ...`);
    const ticker = setInterval(() => {
      outQueue.count().then((n) => console.log(`demo:   broker down: ${produced} produced, outgoing spool holds ${n}`));
    }, 1000);
    const t0 = performance.now();
    await rabbit.restart();
    clearInterval(ticker);
    console.log(
      `demo: RabbitMQ back after ${((performance.now() - t0) / 1000).toFixed(1)} s (same ports); spool holds ${await outQueue.count()}`,
    );
    await producer;
    const timeout = Number(process.env.DEMO_TIMEOUT ?? 90_000);
    const deadline = Date.now() + timeout;
    while (received.size < count && Date.now() < deadline) await sleep(100);
    handling = false;
    await handler;
    const elapsed = (performance.now() - started) / 1000;
    for (const a of agents) a.child.kill('SIGTERM');
    const codes = await Promise.all(agents.map((a) => a.done));
    const duplicates = [...received.values()].reduce((n, k) => n + k - 1, 0);
    const missing = count - received.size;
    const left = await outQueue.count();
    console.log(
      `demo: produced ${count}, received ${received.size} (missing ${missing}, duplicates ${duplicates}, corrupt ${corrupt})`,
    );
    console.log(`demo: outgoing spool left ${left}; end to end ${elapsed.toFixed(1)} s including the broker restart`);
    for (const [i, a] of agents.entries()) {
      const stats = a.log().match(/^count: .*$/m);
      const lost = (a.log().match(/broker connection lost/g) ?? []).length;
      console.log(
        `demo: stompclt ${a.name}: exit ${codes[i]}, ${stats ? stats[0] : 'no statistics'}, reconnected ${lost} time(s)`,
      );
    }
    const ok = missing === 0 && corrupt === 0 && left === 0 && codes.every((c) => c === 0);
    if (!ok) for (const a of agents) console.log(`demo: ${a.name} log:\n${a.log().trimEnd().split('\n').slice(-15).join('\n')}`);
    console.log(ok ? 'demo: OK, nothing lost' : 'demo: FAILED');
    return ok;
  } finally {
    for (const a of agents) a.child.kill('SIGKILL');
    await rabbit.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main() {
  const brokers = require(path.join(root, 'packages/test-support'));
  if (process.env.DEMO_BROKER !== '0') {
    let line;
    try {
      brokers.ensureInstalled();
    } catch (err) {
      line = err.message;
    }
    if (line === undefined) process.exit((await brokerDemo(brokers)) ? 0 : 1);
    console.log(`demo: no private brokers here; for the full pipeline through RabbitMQ, run as root: ${line}`);
  }
  await queueDemo();
}

async function queueDemo() {
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
