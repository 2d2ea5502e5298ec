// Benchmark: msgbricks' STOMP pipelines against minimal raw stompit clients, side by side, against one private
// RabbitMQ started for the run (@msgbricks/test-support, see docs/brokers.md) and stopped at the end.
//
//   npm run bench:stomp -- [--count N] [--window W] [--prefetch P] [--reps R] [--dir PATH] [--quick]
//                          [--only CASE[,CASE...]] [--port STOMP_PORT] [--idle-interval MS]
//
// queue -> broker: a raw stompit publisher (N messages of 1 KiB from memory, a receipt on each, at most W receipts
//   outstanding) against runPipeline(QueueIncoming(DQS, {remove: true}), StompOutgoing, {window: W}) draining a spool
//   pre-filled (untimed) with N serialized messages.
// broker -> queue: a raw subscriber (client-individual acks, prefetch-count P) that writes nothing, and one that adds
//   each message to a DQS before acking it, against runPipeline(StompIncoming, QueueOutgoing(DQS, {fsync}),
//   {window: W, count: N}) with fsync off and on. Each consumer run drains its own queue, filled (untimed) with
//   exactly N messages by the raw publisher just before.
// stompclt-out / stompclt-in: the same two transfers by the real command (agents/stompclt/dist/main.js, --reliable,
//   --window W; --remove out, an fsync=1 queue in), timed from spawn to exit (start-up included). If the command is
//   not built or fails, its rows say "failed" and the other cases go on.
//
// Every figure is the median of R runs; raw and msgbricks runs alternate so that drift hits both. A run is timed
// from before CONNECT to the end of DISCONNECT (msgbricks: the whole runPipeline call). Messages are
// non-persistent (neither side adds `persistent`): the broker keeps them in memory, so the figures are about the
// clients. --only runs some cases (names in the table) and --port uses a broker that is already running, e.g. to
// profile one case: node --cpu-prof bench/stomp.js --only mb-out --port 61613.

const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');
const Client = require('stompit/lib/Client');
const { startRabbitMQ } = require('../packages/test-support');
const { QueueIncoming, QueueOutgoing, runPipeline } = require('../packages/agent/dist');
const { DQS, Message } = require('../packages/message/dist');
const { StompIncoming, StompOutgoing } = require('../packages/stomp/dist');

const HOST = '127.0.0.1';
const BODY_SIZE = 1024;
const TARGET_RATIO = 0.9;
const TARGET_FSYNC_RATE = 10_000;

function parseArgs(argv) {
  const o = {
    count: 20000,
    window: 1000,
    prefetch: undefined,
    reps: 3,
    dir: undefined,
    quick: false,
    only: undefined,
    port: undefined,
    idleInterval: undefined,
  };
  const int = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') o.count = int(a, argv[++i]);
    else if (a === '--window') o.window = int(a, argv[++i]);
    else if (a === '--prefetch') o.prefetch = int(a, argv[++i]);
    else if (a === '--reps') o.reps = int(a, argv[++i]);
    else if (a === '--port') o.port = int(a, argv[++i]);
    else if (a === '--idle-interval') o.idleInterval = int(a, argv[++i]);
    else if (a === '--dir') o.dir = argv[++i];
    else if (a === '--only') o.only = (argv[++i] ?? '').split(',');
    else if (a === '--quick') o.quick = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: node bench/stomp.js [--count N] [--window W] [--prefetch P] [--reps R] [--dir PATH] [--quick] ' +
          '[--only CASE,...] [--port STOMP_PORT] [--idle-interval MS]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (o.dir === undefined && argv.includes('--dir')) throw new Error('--dir needs a path');
  if (o.quick) {
    o.count = Math.min(o.count, 2000);
    o.reps = 1;
  }
  o.prefetch ??= o.window;
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// The raw side: stompit's Client on a plain socket, nothing else.

function rawConnect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    const client = new Client(socket, {});
    client.once('error', reject);
    socket.once('connect', () =>
      client.connect({ 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest', 'heart-beat': '0,0' }),
    );
    client.once('connect', () => {
      client.removeListener('error', reject);
      resolve(client);
    });
  });
}

function rawDisconnect(client) {
  return new Promise((resolve, reject) => client.disconnect((err) => (err ? reject(err) : resolve())));
}

/** Sends `count` SEND frames of `body` to `destination`, each with a receipt, at most `window` unreceipted. */
function rawPublish(client, destination, count, window, body) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let receipted = 0;
    client.once('error', reject);
    const onReceipt = () => {
      receipted++;
      if (receipted === count) {
        client.removeListener('error', reject);
        resolve();
      } else pump();
    };
    const pump = () => {
      while (sent - receipted < window && sent < count) {
        sent++;
        client.send({ destination, 'content-length': body.length }, { onReceipt }).end(body);
      }
    };
    pump();
  });
}

/** Subscribes with client-individual acks; each message goes to `sink` (if any), then is ACKed. */
function rawConsume(client, destination, count, prefetch, sink) {
  return new Promise((resolve, reject) => {
    let acked = 0;
    client.once('error', reject);
    const headers = { destination, ack: 'client-individual', 'prefetch-count': prefetch };
    client.subscribe(headers, (err, msg) => {
      if (err) return reject(err);
      const chunks = [];
      msg.on('data', (c) => chunks.push(c));
      msg.on('end', () => {
        const body = Buffer.concat(chunks);
        Promise.resolve(sink?.(msg.headers, body)).then(() => {
          client.ack(msg);
          if (++acked === count) {
            client.removeListener('error', reject);
            resolve();
          }
        }, reject);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The cases. Each returns {n, seconds} and checks that every message arrived where it should.

function elapsed(t0) {
  return (performance.now() - t0) / 1000;
}

function countFiles(dir) {
  // DQS element files: 14 hex digits, in 8-hex-digit bucket directories (no .tmp, no .lck left behind).
  let n = 0;
  for (const bucket of fs.readdirSync(dir)) {
    if (!/^[0-9a-f]{8}$/.test(bucket)) continue;
    for (const f of fs.readdirSync(path.join(dir, bucket))) if (/^[0-9a-f]{14}$/.test(f)) n++;
  }
  return n;
}

function brokerOptions(port) {
  return { uri: `tcp://${HOST}:${port}`, auth: ['plain name=guest pass=guest'], reconnect: false };
}

async function rawOut(ctx) {
  const t0 = performance.now();
  const client = await rawConnect(ctx.port);
  await rawPublish(client, '/queue/bench', ctx.count, ctx.window, ctx.body);
  await rawDisconnect(client);
  return { n: ctx.count, seconds: elapsed(t0) };
}

async function mbOut(ctx) {
  const dir = ctx.newDir('spool');
  const spool = new DQS(dir);
  const serialized = new Message({ header: { destination: '/queue/bench' }, body: ctx.body }).serialize();
  for (let i = 0; i < ctx.count; i += 1000) await spool.addMany(new Array(Math.min(1000, ctx.count - i)).fill(serialized));
  ctx.sync();
  const t0 = performance.now();
  const stats = await runPipeline(new QueueIncoming(new DQS(dir), { remove: true }), new StompOutgoing(brokerOptions(ctx.port)), {
    window: ctx.window,
  });
  const seconds = elapsed(t0);
  const left = countFiles(dir);
  if (stats.sent !== ctx.count || left !== 0)
    throw new Error(`mb-out: sent ${stats.sent} of ${ctx.count}, ${left} left in the spool`);
  return { n: stats.sent, seconds };
}

/** Fills a fresh queue with exactly `count` messages (untimed) and returns its destination. */
async function fillQueue(ctx) {
  const destination = `/queue/bench-in-${ctx.nextQueue++}`;
  const client = await rawConnect(ctx.port);
  // SUBSCRIBE declares the (durable) queue; RabbitMQ drops what is sent to a queue nobody declared.
  await new Promise((resolve, reject) => {
    client.subscribe({ destination, id: 'declare', ack: 'client-individual', 'prefetch-count': 1 }, () => undefined);
    client.sendFrame('UNSUBSCRIBE', { id: 'declare' }, { onReceipt: resolve }).end();
    client.once('error', reject);
  });
  await rawPublish(client, destination, ctx.count, 1000, ctx.body);
  await rawDisconnect(client);
  return destination;
}

async function rawIn(ctx, withSpool) {
  const destination = await fillQueue(ctx);
  const dir = withSpool ? ctx.newDir('in') : undefined;
  const spool = withSpool ? new DQS(dir) : undefined;
  const sink = spool
    ? (headers, body) => {
        const header = {};
        for (const [k, v] of Object.entries(headers)) if (k !== 'content-length') header[k] = String(v);
        return spool.add(new Message({ header, body }).serialize());
      }
    : undefined;
  ctx.sync();
  const t0 = performance.now();
  const client = await rawConnect(ctx.port);
  await rawConsume(client, destination, ctx.count, ctx.prefetch, sink);
  await rawDisconnect(client);
  const seconds = elapsed(t0);
  if (dir !== undefined && countFiles(dir) !== ctx.count) throw new Error(`raw-in-dqs: ${countFiles(dir)} elements`);
  return { n: ctx.count, seconds };
}

async function mbIn(ctx, fsync) {
  const destination = await fillQueue(ctx);
  const dir = ctx.newDir('in');
  ctx.sync();
  const t0 = performance.now();
  const stats = await runPipeline(
    new StompIncoming(brokerOptions(ctx.port), { subscribe: [{ destination }], prefetch: ctx.prefetch }),
    new QueueOutgoing(new DQS(dir, { fsync })),
    { window: ctx.window, count: ctx.count, idleInterval: ctx.idleInterval },
  );
  const seconds = elapsed(t0);
  const n = countFiles(dir);
  if (stats.sent !== ctx.count || n !== ctx.count) throw new Error(`mb-in: sent ${stats.sent}, ${n} elements, of ${ctx.count}`);
  return { n, seconds };
}

// The real command, as users run it: node agents/stompclt/dist/main.js (built by tsc -b). A run is timed from the
// spawn to the exit, so it includes the command's start-up (about 0.2-0.3 s of Node, modules and configuration).
const STOMPCLT = path.join(__dirname, '..', 'agents', 'stompclt', 'dist', 'main.js');

function runStompclt(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STOMPCLT, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`stompclt exited ${code}: ${err.trim().slice(-500)}`)),
    );
  });
}

const stompcltAuth = ['plain name=guest pass=guest'];

async function stompcltOut(ctx) {
  const dir = ctx.newDir('spool');
  const spool = new DQS(dir);
  const serialized = new Message({ header: { destination: '/queue/bench' }, body: ctx.body }).serialize();
  for (let i = 0; i < ctx.count; i += 1000) await spool.addMany(new Array(Math.min(1000, ctx.count - i)).fill(serialized));
  ctx.sync();
  const t0 = performance.now();
  await runStompclt([
    '--incoming-queue',
    `path=${dir}`,
    '--outgoing-broker-uri',
    `tcp://${HOST}:${ctx.port}`,
    '--outgoing-broker-auth',
    ...stompcltAuth,
    '--reliable',
    '--remove',
    '--window',
    String(ctx.window),
  ]);
  const seconds = elapsed(t0);
  const left = countFiles(dir);
  if (left !== 0) throw new Error(`stompclt-out: ${left} left in the spool`);
  return { n: ctx.count, seconds };
}

async function stompcltIn(ctx) {
  const destination = await fillQueue(ctx);
  const dir = ctx.newDir('in');
  ctx.sync();
  const t0 = performance.now();
  await runStompclt([
    '--incoming-broker-uri',
    `tcp://${HOST}:${ctx.port}`,
    '--incoming-broker-auth',
    ...stompcltAuth,
    '--subscribe',
    `destination=${destination}`,
    '--outgoing-queue',
    `path=${dir} fsync=1`,
    '--reliable',
    '--window',
    String(ctx.window),
    // Without it stompclt's own tuning (prefetch = min(count, 100) with --reliable --count) caps the batches
    // that one syncfs covers at 100 messages: the same prefetch as mb-in keeps the comparison fair.
    '--prefetch',
    String(ctx.prefetch),
    '--count',
    String(ctx.count),
  ]);
  const seconds = elapsed(t0);
  const n = countFiles(dir);
  if (n !== ctx.count) throw new Error(`stompclt-in: ${n} elements of ${ctx.count}`);
  return { n, seconds };
}

// Rows of the table: [case, direction, description, raw case to compare with, target].
const CASES = [
  { key: 'raw-out', dir: 'queue -> broker', label: 'raw stompit publisher (memory)', run: rawOut },
  {
    key: 'mb-out',
    dir: 'queue -> broker',
    label: 'msgbricks DQS -> StompOutgoing',
    run: mbOut,
    vs: 'raw-out',
    target: { ratio: TARGET_RATIO },
  },
  {
    key: 'stompclt-out',
    dir: 'queue -> broker',
    label: 'stompclt command, DQS -> broker',
    run: stompcltOut,
    vs: 'raw-out',
    optional: true,
  },
  { key: 'raw-in', dir: 'broker -> queue', label: 'raw subscriber, acks only', run: (c) => rawIn(c, false) },
  { key: 'raw-in-dqs', dir: 'broker -> queue', label: 'raw subscriber + DQS add, fsync off', run: (c) => rawIn(c, true) },
  {
    key: 'mb-in',
    dir: 'broker -> queue',
    label: 'msgbricks StompIncoming -> DQS, fsync off',
    run: (c) => mbIn(c, false),
    vs: 'raw-in-dqs',
  },
  {
    key: 'mb-in-fsync',
    dir: 'broker -> queue',
    label: 'msgbricks StompIncoming -> DQS, fsync on',
    run: (c) => mbIn(c, true),
    vs: 'raw-in-dqs',
    target: { rate: TARGET_FSYNC_RATE },
  },
  {
    key: 'stompclt-in',
    dir: 'broker -> queue',
    label: 'stompclt command, broker -> DQS fsync',
    run: stompcltIn,
    vs: 'raw-in-dqs',
    optional: true,
  },
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (v) => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));

function fsInfo(dir) {
  try {
    const lines = execFileSync('df', ['-T', '-P', dir], { encoding: 'utf8' }).trim().split('\n');
    const f = lines[lines.length - 1].split(/\s+/);
    return `${f[1]} (${f[0]} on ${f[f.length - 1]})`;
  } catch {
    return 'unknown file system';
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const cases = opts.only ? CASES.filter((c) => opts.only.includes(c.key)) : CASES;
  if (cases.length === 0) throw new Error(`--only: no such case (${CASES.map((c) => c.key).join(', ')})`);

  const parent = opts.dir ? path.resolve(opts.dir) : os.tmpdir();
  const madeParent = fs.mkdirSync(parent, { recursive: true });
  const base = fs.mkdtempSync(path.join(parent, 'bench-stomp-'));
  let broker;
  const cleanup = async () => {
    fs.rmSync(madeParent ?? base, { recursive: true, force: true });
    await broker?.stop();
  };
  process.on('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });

  const started = performance.now();
  let port = opts.port;
  if (port === undefined) {
    process.stderr.write('starting RabbitMQ...\n');
    broker = await startRabbitMQ();
    port = broker.ports.stomp;
    process.stderr.write(`  RabbitMQ up in ${(broker.startupMs / 1000).toFixed(1)} s, STOMP on port ${port}\n`);
  }
  let dirs = 0;
  const ctx = {
    port,
    count: opts.count,
    window: opts.window,
    prefetch: opts.prefetch,
    idleInterval: opts.idleInterval,
    body: Buffer.alloc(BODY_SIZE, 'x'),
    nextQueue: 0,
    made: [],
    newDir: (what) => {
      const d = path.join(base, `${what}-${dirs++}`);
      ctx.made.push(d);
      return d;
    },
    sync: () => {
      try {
        execFileSync('sync', ['--file-system', base]);
      } catch {
        // Only makes runs more even.
      }
    },
  };

  console.log(`msgbricks STOMP pipelines vs raw stompit ${require('stompit/package.json').version}, node ${process.version}`);
  console.log(`broker: ${broker ? `private RabbitMQ (${broker.name})` : `already running on port ${port}`}`);
  console.log(`spools: ${base}: ${fsInfo(base)}`);
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Linux ${os.release()}`);
  console.log(
    `${opts.count} messages of ${BODY_SIZE} B body per run, window ${opts.window}, prefetch ${opts.prefetch}, ` +
      `median of ${opts.reps} run(s)\n`,
  );

  const results = new Map(cases.map((c) => [c.key, []]));
  const failed = new Map();
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const c of cases) {
        if (failed.has(c.key)) continue;
        let r;
        try {
          r = await c.run(ctx);
        } catch (err) {
          // The command is another package's: when it is not built or fails, its rows say so and the rest goes on.
          if (!c.optional) throw err;
          failed.set(c.key, err.message.split('\n')[0]);
          process.stderr.write(`  ${c.key} skipped: ${failed.get(c.key)}\n`);
          for (const d of ctx.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
          continue;
        }
        results.get(c.key).push(r.n / r.seconds);
        // Untimed: what a run wrote goes before the next run (on ext4 with discard, deleting 20,000 files takes seconds).
        for (const d of ctx.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
      }
      process.stderr.write(`  run ${rep + 1}/${opts.reps} done (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
    }
  } finally {
    await cleanup();
  }

  const rate = (key) => (results.get(key)?.length ? median(results.get(key)) : undefined);
  const header = ['direction', 'case', '', 'messages/s', 'MB/s', 'ratio', 'vs', 'target', 'met'];
  const table = [header];
  const verdicts = [];
  for (const c of cases) {
    if (failed.has(c.key)) {
      table.push([c.dir, c.key, c.label, 'n/a', '', '', c.vs ?? '', 'failed', '']);
      continue;
    }
    const r = rate(c.key);
    const ref = c.vs ? rate(c.vs) : undefined;
    let target = '';
    let met = '';
    if (c.target?.ratio !== undefined && ref !== undefined) {
      target = `>= ${c.target.ratio}x ${c.vs}`;
      met = r / ref >= c.target.ratio ? 'yes' : 'NO';
    } else if (c.target?.rate !== undefined) {
      target = `>= ${fmt(c.target.rate)}/s`;
      met = r >= c.target.rate ? 'yes' : 'NO';
    }
    if (met) verdicts.push(met === 'yes');
    const ratio = ref === undefined ? '' : `${(r / ref).toFixed(2)}x`;
    const mbs = ((r * BODY_SIZE) / 1e6).toFixed(1);
    table.push([c.dir, c.key, c.label, fmt(r), mbs, ratio, c.vs ?? '', target, met]);
  }
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const [i, row] of table.entries()) {
    console.log(
      row.map((cell, j) => (j < 3 || j === 6 || j === 7 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join('  '),
    );
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  const all = [...results.entries()].map(([k, xs]) => `${k} ${xs.map((x) => fmt(x)).join('/')}`).join('; ');
  console.log(`\nmessages/s (median); MB/s = body bytes (10^6) per second; every run: ${all}`);
  for (const [k, why] of failed) console.log(`${k} failed: ${why}`);
  console.log(
    `targets met: ${verdicts.filter(Boolean).length}/${verdicts.length}; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
