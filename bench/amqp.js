// Benchmark: the amqpclt command against minimal raw rhea clients, side by side, against one private RabbitMQ
// (AMQP 1.0 plugin) started for the run (@msgbricks/test-support, see docs/brokers.md) and stopped at the end.
//
//   npm run bench:amqp -- [--count N] [--window W] [--reps R] [--dir PATH] [--quick] [--only CASE[,CASE...]]
//
// queue -> broker: a raw rhea sender (N messages of 1 KiB from memory as data sections, unsettled, at most W
//   unsettled deliveries, done when every one is accepted) against `amqpclt --incoming-queue --remove
//   --outgoing-broker-uri --window W` draining a spool pre-filled (untimed) with N serialized messages.
// broker -> queue: a raw rhea receiver (manual credit W, accept on arrival) that writes nothing, against
//   `amqpclt --incoming-broker-uri --subscribe --outgoing-queue --count N --window W` (the spool written with fsync
//   and group commit, as amqpclt always does) on a queue filled (untimed) with exactly N messages just before.
//
// amqpclt is timed as users run it: from spawn to exit, so its ~0.3 s of start-up is in its figure. Every figure is
// the median of R runs; raw and amqpclt runs alternate so that drift hits both.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');
const rhea = require('rhea');
const { startRabbitMQ } = require('../packages/test-support');
const { DQS, Message } = require('../packages/message/dist');

const HOST = '127.0.0.1';
const BODY_SIZE = 1024;
const TARGET_RATIO = 0.9;
const AMQPCLT = path.join(__dirname, '..', 'agents', 'amqpclt', 'dist', 'main.js');

function parseArgs(argv) {
  const o = { count: 20000, window: 1000, reps: 3, dir: undefined, quick: false, only: undefined };
  const int = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--count') o.count = int(a, argv[++i]);
    else if (a === '--window') o.window = int(a, argv[++i]);
    else if (a === '--reps') o.reps = int(a, argv[++i]);
    else if (a === '--dir') o.dir = argv[++i];
    else if (a === '--only') o.only = (argv[++i] ?? '').split(',');
    else if (a === '--quick') o.quick = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/amqp.js [--count N] [--window W] [--reps R] [--dir PATH] [--quick] [--only CASE,...]');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (o.quick) {
    o.count = Math.min(o.count, 2000);
    o.reps = 1;
  }
  return o;
}

function rawConnect(port) {
  const container = rhea.create_container({ id: `bench-${process.pid}` });
  return new Promise((resolve, reject) => {
    const connection = container.connect({
      host: HOST,
      port,
      username: 'guest',
      password: 'guest',
      reconnect: false,
    });
    connection.once('connection_open', () => resolve(connection));
    connection.once('connection_error', (ctx) => reject(ctx.connection.error ?? new Error('connection error')));
    connection.once('disconnected', (ctx) => reject(ctx.error ?? new Error('disconnected')));
  });
}

function rawClose(connection) {
  return new Promise((resolve) => {
    connection.once('connection_close', () => resolve());
    connection.once('disconnected', () => resolve());
    connection.close();
  });
}

/** Sends `count` messages, keeping at most `window` unsettled; resolves when all are accepted. */
function rawSend(connection, address, count, window, body) {
  return new Promise((resolve, reject) => {
    const sender = connection.open_sender({ target: { address, durable: 2 } });
    let sent = 0;
    let accepted = 0;
    const pump = () => {
      while (sent < count && sent - accepted < window && sender.sendable()) {
        sender.send({ durable: true, body: rhea.message.data_section(body) });
        sent++;
      }
    };
    sender.on('sendable', pump);
    sender.on('accepted', () => {
      if (++accepted === count) {
        sender.close();
        resolve();
      } else pump();
    });
    sender.on('rejected', (ctx) => reject(new Error(`rejected: ${JSON.stringify(ctx.delivery.remote_state)}`)));
    sender.on('released', () => reject(new Error('released')));
    sender.on('sender_error', (ctx) => reject(ctx.sender.error));
  });
}

/** Receives and accepts `count` messages with manual credit `window`. */
function rawReceive(connection, address, count, window) {
  return new Promise((resolve, reject) => {
    const receiver = connection.open_receiver({ source: { address, durable: 2 }, credit_window: 0, autoaccept: false });
    let received = 0;
    receiver.add_credit(window);
    receiver.on('message', (ctx) => {
      ctx.delivery.accept();
      received++;
      if (received === count) {
        receiver.close();
        resolve();
      } else receiver.add_credit(1);
    });
    receiver.on('receiver_error', (ctx) => reject(ctx.receiver.error));
  });
}

const elapsed = (t0) => (performance.now() - t0) / 1000;

function countFiles(dir) {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const bucket of fs.readdirSync(dir)) {
    if (!/^[0-9a-f]{8}$/.test(bucket)) continue;
    for (const f of fs.readdirSync(path.join(dir, bucket))) if (/^[0-9a-f]{14}$/.test(f)) n++;
  }
  return n;
}

function amqpclt(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AMQPCLT, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`amqpclt exited ${code}:\n${err}`))));
  });
}

async function rawOut(ctx) {
  const t0 = performance.now();
  const c = await rawConnect(ctx.port);
  await rawSend(c, '/queue/bench-out', ctx.count, ctx.window, ctx.body);
  await rawClose(c);
  return { n: ctx.count, seconds: elapsed(t0) };
}

async function mbOut(ctx) {
  const dir = ctx.newDir('spool');
  const spool = new DQS(dir);
  const serialized = new Message({ header: { destination: '/queue/bench-out' }, body: ctx.body }).serialize();
  for (let i = 0; i < ctx.count; i += 1000) await spool.addMany(new Array(Math.min(1000, ctx.count - i)).fill(serialized));
  ctx.sync();
  const t0 = performance.now();
  await amqpclt([
    '--incoming-queue',
    `path=${dir}`,
    '--remove',
    '--outgoing-broker-uri',
    `amqp://${HOST}:${ctx.port}`,
    '--outgoing-broker-auth',
    'plain name=guest pass=guest',
    '--reliable',
    '--window',
    String(ctx.window),
  ]);
  const seconds = elapsed(t0);
  const left = countFiles(dir);
  if (left !== 0) throw new Error(`amqpclt-out: ${left} elements left in the spool`);
  return { n: ctx.count, seconds };
}

async function fillQueue(ctx) {
  const address = `/queue/bench-in-${ctx.nextQueue++}`;
  const c = await rawConnect(ctx.port);
  await rawSend(c, address, ctx.count, 1000, ctx.body);
  await rawClose(c);
  return address;
}

async function rawIn(ctx) {
  const address = await fillQueue(ctx);
  const t0 = performance.now();
  const c = await rawConnect(ctx.port);
  await rawReceive(c, address, ctx.count, ctx.window);
  await rawClose(c);
  return { n: ctx.count, seconds: elapsed(t0) };
}

async function mbIn(ctx) {
  const address = await fillQueue(ctx);
  const dir = ctx.newDir('in');
  ctx.sync();
  const t0 = performance.now();
  await amqpclt([
    '--incoming-broker-uri',
    `amqp://${HOST}:${ctx.port}`,
    '--incoming-broker-auth',
    'plain name=guest pass=guest',
    '--subscribe',
    `destination=${address}`,
    '--outgoing-queue',
    `path=${dir}`,
    '--reliable',
    '--count',
    String(ctx.count),
    '--window',
    String(ctx.window),
    '--prefetch',
    String(ctx.window),
  ]);
  const seconds = elapsed(t0);
  const n = countFiles(dir);
  if (n !== ctx.count) throw new Error(`amqpclt-in: ${n} elements of ${ctx.count}`);
  return { n, seconds };
}

const CASES = [
  { key: 'raw-out', dir: 'queue -> broker', label: 'raw rhea sender (memory)', run: rawOut },
  {
    key: 'amqpclt-out',
    dir: 'queue -> broker',
    label: 'amqpclt DQS -> broker (remove)',
    run: mbOut,
    vs: 'raw-out',
    target: TARGET_RATIO,
  },
  { key: 'raw-in', dir: 'broker -> queue', label: 'raw rhea receiver, accepts only', run: rawIn },
  { key: 'amqpclt-in', dir: 'broker -> queue', label: 'amqpclt broker -> DQS (fsync)', run: mbIn, vs: 'raw-in' },
];

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (v) => (v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US'));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(AMQPCLT)) throw new Error(`${AMQPCLT} missing: run npx tsc -b first`);
  const cases = opts.only ? CASES.filter((c) => opts.only.includes(c.key)) : CASES;
  if (cases.length === 0) throw new Error(`--only: no such case (${CASES.map((c) => c.key).join(', ')})`);
  const parent = opts.dir ? path.resolve(opts.dir) : os.tmpdir();
  const madeParent = fs.mkdirSync(parent, { recursive: true });
  const base = fs.mkdtempSync(path.join(parent, 'bench-amqp-'));
  let broker;
  const cleanup = async () => {
    fs.rmSync(madeParent ?? base, { recursive: true, force: true });
    await broker?.stop();
  };
  process.on('SIGINT', () => {
    cleanup().finally(() => process.exit(130));
  });
  const started = performance.now();
  try {
    process.stderr.write('starting RabbitMQ...\n');
    broker = await startRabbitMQ();
    process.stderr.write(`  RabbitMQ up, AMQP 1.0 on port ${broker.ports.amqp}\n`);
    let dirs = 0;
    const ctx = {
      port: broker.ports.amqp,
      count: opts.count,
      window: opts.window,
      body: Buffer.alloc(BODY_SIZE, 'x'),
      nextQueue: 0,
      made: [],
      newDir: (what) => {
        const d = path.join(base, `${what}-${dirs++}`);
        ctx.made.push(d);
        return d;
      },
      sync: () => execFileSync('sync', ['--file-system', base]),
    };
    const results = new Map(cases.map((c) => [c.key, []]));
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const c of cases) {
        const r = await c.run(ctx);
        const rate = r.n / r.seconds;
        results.get(c.key).push(rate);
        process.stderr.write(`  run ${rep + 1}/${opts.reps} ${c.key}: ${fmt(rate)} msg/s\n`);
        for (const d of ctx.made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
      }
    }
    const rateOf = (key) => (results.has(key) ? median(results.get(key)) : undefined);
    console.log(`\namqp benchmark: ${opts.count} messages of ${BODY_SIZE} B, window ${opts.window}, median of ${opts.reps}`);
    console.log(`spools in ${base}\n`);
    console.log('| direction | case | what | messages/s | MB/s | ratio | target | met |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const c of cases) {
      const rate = rateOf(c.key);
      const vs = c.vs === undefined ? undefined : rateOf(c.vs);
      const ratio = vs === undefined ? undefined : rate / vs;
      const target = c.target === undefined ? '' : `>= ${c.target}x \`${c.vs}\``;
      const met = c.target === undefined || ratio === undefined ? '' : ratio >= c.target ? 'yes' : 'no';
      const mbs = ((rate * BODY_SIZE) / 1e6).toFixed(1);
      console.log(
        `| ${c.dir} | \`${c.key}\` | ${c.label} | ${fmt(rate)} | ${mbs} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}x \`${c.vs}\``} | ${target} | ${met} |`,
      );
    }
    console.log(`\nindividual runs: ${cases.map((c) => `${c.key} ${results.get(c.key).map(fmt).join('/')}`).join('; ')}`);
    console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
