// One case of bench/megabus.js, in its own process: publishes or consumes `count` messages of 1 KiB through the
// brokers listed in `ports` (RabbitMQ nodes on loopback), either with @msgbricks/megabus (a Publisher or a Consumer
// behind the alias `mb.bench`, resolved by an injected static resolver) or with minimal raw stompit clients doing
// the same work (receipts, a window of sends in flight; client-individual ACKs, the prefetch, every broker). Prints
// one JSON line: the CPU (user + system, every thread) and wall time from the first connection to the last
// disconnection (modules loaded and configuration read before the clock starts), the messages, peak RSS.
//
//   node bench/lib/megabus-case.js '{"case": "publish-raw" | "publish-megabus" | "consume-raw" | "consume-megabus",
//     "ports": [P, ...], "count": N, "window": W, "prefetch": P, "destination": D, "selector": S?, "dir": TMP}'
//
// With `selector`, the consumers evaluate it on every message on the client (@msgbricks/selector), the raw one by
// parseSelector(...).matches(headers), the Consumer through its configuration (selector, hostgroup_selector).

const fs = require('node:fs');
const path = require('node:path');
const { Consumer, Publisher, staticResolver } = require('../../packages/megabus/dist');
const { parseSelector } = require('../../packages/selector/dist');
const { connect, headersOf, subscribe } = require('./stompit');

const o = JSON.parse(process.argv[2]);
const HOST = '127.0.0.1';
const ALIAS = 'mb.bench';
const BODY = Buffer.alloc(1024, 'x');

/** The headers of message `i`: half of them in state draining, every one in an eos host group. */
function messageHeaders(i) {
  return {
    destination: o.destination,
    persistent: 'true',
    host: `disk_${i % 100}`,
    hostgroup: 'eos/disk',
    state: i % 2 === 0 ? 'draining' : 'production',
  };
}

const disconnect = (client) => new Promise((resolve, reject) => client.disconnect((err) => (err ? reject(err) : resolve())));

/** The Megabus side's configuration: the alias, guest over plain STOMP, and `extra` lines. */
function configFile(extra) {
  const file = path.join(o.dir, `megabus-${process.pid}.yaml`);
  const lines = [`server: ${ALIAS}`, 'auth_method: password', 'user: guest', 'password: guest', `destination: ${o.destination}`];
  fs.writeFileSync(file, `${[...lines, ...extra].join('\n')}\n`);
  return file;
}
const resolver = staticResolver({ [ALIAS]: o.ports.map((port) => ({ address: HOST, port })) });

/** Sends to one broker (the Publisher's "send to any": one broker at a time), `window` receipts outstanding. */
async function publishRaw() {
  const port = o.ports[Math.floor(Math.random() * o.ports.length)];
  const client = await connect(port);
  await new Promise((resolve) => {
    let sent = 0;
    let receipted = 0;
    const onReceipt = () => (++receipted === o.count ? resolve() : pump());
    const pump = () => {
      while (sent - receipted < o.window && sent < o.count) {
        const h = messageHeaders(sent++);
        client.send({ ...h, 'content-length': BODY.length }, { onReceipt }).end(BODY);
      }
    };
    pump();
  });
  await disconnect(client);
  return o.count;
}

async function publishMegabus(prepared) {
  const p = prepared;
  let next = 0;
  const worker = async () => {
    while (next < o.count) {
      const h = messageHeaders(next++);
      await p.send(BODY, h);
    }
  };
  await Promise.all(Array.from({ length: o.window }, worker));
  await p.close();
  return o.count;
}

/** Subscribes on every broker; each message read whole, checked against the selector, ACKed; none kept. */
async function consumeRaw(selector) {
  const clients = await Promise.all(o.ports.map((port) => connect(port)));
  let seen = 0;
  let selected = 0;
  // Wall time inside matches() alone (single-threaded: CPU time), for the cost of evaluating the selector.
  let matchMs = 0;
  await new Promise((resolve, reject) => {
    for (const client of clients) {
      subscribe(
        client,
        o.destination,
        o.prefetch,
        (msg, body) => {
          if (selector === undefined) selected += body.length > 0 ? 1 : 0;
          else {
            const header = headersOf(msg);
            const t = performance.now();
            if (selector.matches(header)) selected += body.length > 0 ? 1 : 0;
            matchMs += performance.now() - t;
          }
          client.ack(msg);
          if (++seen === o.count) resolve();
        },
        reject,
      );
    }
  });
  await Promise.all(clients.map(disconnect));
  return { count: seen, selected, matchUs: matchMs * 1000 };
}

async function consumeMegabus(prepared) {
  const { consumer, state } = prepared;
  await consumer.start();
  await state.done;
  await consumer.stop();
  return { count: state.handled + consumer.filtered, selected: state.handled };
}

/** What is built before the clock starts (configuration read and validated, selector parsed). */
function prepare() {
  if (o.case === 'publish-megabus') return new Publisher({ config: configFile([]), resolver });
  if (o.case === 'consume-megabus') {
    const state = { handled: 0, done: undefined };
    let finish;
    state.done = new Promise((resolve) => {
      finish = resolve;
    });
    const extra = [`consumer:`, `  prefetch: ${o.prefetch}`];
    if (o.selector !== undefined) extra.push(`selector: "${o.selector}"`, 'hostgroup_selector: eos/%');
    const consumer = new Consumer({
      config: configFile(extra),
      resolver,
      onEvent: (e) => {
        if (e.type === 'filtered' && state.handled + consumer.filtered === o.count) finish();
      },
      handler: (m) => {
        if (m.body.length > 0) state.handled++;
        if (state.handled + consumer.filtered === o.count) finish();
      },
    });
    return { consumer, state };
  }
  if (o.selector !== undefined) return parseSelector(`(${o.selector}) AND (hostgroup LIKE 'eos/%')`);
  return undefined;
}

async function main() {
  const prepared = prepare();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let r;
  if (o.case === 'publish-raw') r = { count: await publishRaw() };
  else if (o.case === 'publish-megabus') r = { count: await publishMegabus(prepared) };
  else if (o.case === 'consume-raw') r = await consumeRaw(prepared);
  else if (o.case === 'consume-megabus') r = await consumeMegabus(prepared);
  else throw new Error(`unknown case ${o.case}`);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({ ...r, wallMs, cpuUs: cpu.user + cpu.system, sysUs: cpu.system, maxRssKb: process.resourceUsage().maxRSS })}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
