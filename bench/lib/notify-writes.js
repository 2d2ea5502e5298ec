// The `writes` case of bench/notify.js: what one SSE delivery costs the writing process, by way of writing, with
// nothing else in it (no broker, no HTTP publish, no hub). N subscribers (bench/lib/notify-clients.js, in child
// processes) hold SSE responses from a node:http server in this process; each round writes one ~500-byte event to
// all of them, and the CPU time of this process (user and system, process.cpuUsage) from the first write until the
// writes have been handed to the kernel (a setImmediate after the loop: node:http's res.write uncorks on the next
// tick) is divided by N. The clients confirm every delivery before the next round.
//   res:    res.write(frame), as a plain node:http server does (chunked: four pieces, cork, next-tick uncork)
//   socket: socket.write(chunk), the frame pre-framed as one HTTP chunk once per round (what the gateway does)
// Prints one JSON line per variant: {variant, subscribers, rounds, cpuUs, userUs, systemUs, loopMs}.

const { fork } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const subscribers = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 10);
const procs = Number(process.argv[4] ?? 2);

const responses = [];
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write('retry: 3000\n\n');
  res.socket.setNoDelay(true);
  responses.push(res);
});

const kids = Array.from({ length: procs }, () => fork(path.join(__dirname, 'notify-clients.js')));
const ask = (cmd, extra = {}) =>
  Promise.all(
    kids.map(
      (k) =>
        new Promise((resolve) => {
          k.once('message', resolve);
          k.send({ cmd, ...extra });
        }),
    ),
  );
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const immediate = () => new Promise((r) => setImmediate(r));

async function delivered(expected) {
  for (;;) {
    const got = (await ask('count')).reduce((s, r) => s + r.received, 0);
    if (got >= expected) return;
    await sleep(5);
  }
}

async function variant(name, revision0) {
  let user = 0;
  let system = 0;
  let loop = 0;
  await ask('reset');
  const body = JSON.stringify({ version: 1, type: 'activity', repository: 'w.example.org', manifest: 'A'.repeat(400) });
  // Two rounds to warm up (JIT), not counted.
  for (let r = 0; r < rounds + 2; r++) {
    const frame = Buffer.from(`id: ${revision0 + r}\ndata: ${body}\n\n`);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    if (name === 'res') {
      for (const res of responses) res.write(frame);
    } else {
      const chunk = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, Buffer.from('\r\n')]);
      for (const res of responses) res.socket.write(chunk);
    }
    await immediate();
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    await delivered(responses.length * (r + 1));
    if (r >= 2) {
      user += c.user;
      system += c.system;
      loop += t1 - t0;
    }
  }
  const n = responses.length * rounds;
  return {
    variant: name,
    subscribers: responses.length,
    rounds,
    cpuUs: (user + system) / n,
    userUs: user / n,
    systemUs: system / n,
    loopMs: loop / rounds,
  };
}

server.listen(0, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}/`;
  await ask('connect', { url, count: Math.ceil(subscribers / procs), repos: ['w.example.org'], stalled: 0 });
  await sleep(500);
  let revision = 1;
  for (const name of ['res', 'socket', 'res', 'socket']) {
    process.stdout.write(`${JSON.stringify(await variant(name, revision))}\n`);
    revision += rounds + 2;
  }
  for (const k of kids) k.send({ cmd: 'exit' });
  server.close();
  process.exit(0);
});
