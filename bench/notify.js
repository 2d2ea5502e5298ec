// Benchmark: the notify gateway (msgnotify-gateway, as built, with a private RabbitMQ) against a minimal raw SSE
// server (bench/lib/notify-raw-server.js: node:http, no broker) in the same run, with the same subscriber processes
// (bench/lib/notify-clients.js, raw sockets, light parsing) and the same publisher. docs/benchmarks.md, "notify".
//
//   npm run bench:notify -- [--subscribers N] [--fanouts K] [--rate-subscribers N] [--rate P] [--duration S]
//                           [--repos R] [--stalled F] [--only writes,fanout,rate,stalled]
//                           [--servers raw,raw-socket,gateway,gateway-N,gateway-wN]
//                           [--client-procs N] [--profile DIR] [--quick]
//
// Cases: fanout (N=10,000 SSE subscribers of one repository: server RSS, then K=5 publishes one after the other,
// each to all: delivery latency from the publisher's send to the subscriber's read), rate (1,000 subscribers spread
// over R=10 repositories, P=100 publishes/s round-robin for S=60 s: latency, missed, CPU per delivery), stalled
// (the same with F=10% of the subscribers never reading), writes (bench/lib/notify-writes.js: the CPU of one
// delivery by way of writing, res.write against a pre-framed socket.write, in a bare process).

const { fork, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { formatManifest } = require('../packages/notify');
const { startRabbitMQ } = require('../packages/test-support');

function parseArgs(argv) {
  const a = {
    subscribers: 10_000,
    fanouts: 5,
    rateSubscribers: 1000,
    rate: 100,
    duration: 60,
    repos: 10,
    stalled: 0.1,
    only: ['writes', 'fanout', 'rate', 'stalled'],
    servers: ['raw', 'gateway'],
    profile: undefined,
    clientProcs: 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--quick') Object.assign(a, { subscribers: 2000, fanouts: 3, rateSubscribers: 200, duration: 10 });
    else if (k === '--subscribers') a.subscribers = Number(v());
    else if (k === '--fanouts') a.fanouts = Number(v());
    else if (k === '--rate-subscribers') a.rateSubscribers = Number(v());
    else if (k === '--rate') a.rate = Number(v());
    else if (k === '--duration') a.duration = Number(v());
    else if (k === '--repos') a.repos = Number(v());
    else if (k === '--stalled') a.stalled = Number(v());
    else if (k === '--only') a.only = v().split(',');
    else if (k === '--servers') a.servers = v().split(',');
    else if (k === '--profile') a.profile = v();
    else if (k === '--client-procs') a.clientProcs = Number(v());
    else {
      console.error(`unknown option ${k}`);
      process.exit(2);
    }
  }
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procStats(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)[1]);
  const tick = 100;
  return { cpu: (Number(f[11]) + Number(f[12])) / tick, rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** `pid` and its descendants (/proc/PID/task/TID/children). */
function processTree(pid) {
  const out = [pid];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const children = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (children !== '') for (const c of children.split(' ')) out.push(...processTree(Number(c)));
  }
  return out;
}

function pct(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A publish body with the publisher's clock in it (`sentAt`, ms since the epoch, sub-ms). */
function body(repo, rev) {
  const manifest = formatManifest({ C: 'c'.repeat(40), B: 4096, D: 240, S: rev, N: repo, T: 1700000000 + rev });
  return JSON.stringify({
    version: 1,
    timestamp: new Date().toUTCString(),
    type: 'activity',
    repository: repo,
    manifest: manifest.toString('base64'),
    sentAt: performance.timeOrigin + performance.now(),
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(port, payload) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/v1/notifications/publish',
        agent,
        headers: {
          Authorization: 'Bearer bench-token-0',
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

class Clients {
  constructor(n) {
    this.procs = Array.from({ length: n }, () =>
      fork(path.join(__dirname, 'lib', 'notify-clients.js'), [], { stdio: 'inherit' }),
    );
  }
  ask(cmd, extra = (_i) => ({})) {
    return Promise.all(
      this.procs.map(
        (p, i) =>
          new Promise((resolve) => {
            p.once('message', resolve);
            p.send({ cmd, ...extra(i) });
          }),
      ),
    );
  }
  async received() {
    return (await this.ask('count')).reduce((s, r) => s + r.received, 0);
  }
  /** The clients' CPU time so far, in seconds (all processes). */
  cpu() {
    return this.procs.reduce((s, p) => s + procStats(p.pid).cpu, 0);
  }
  /**
   * How far each client process's clock (performance.timeOrigin + now(), what latencies are measured with) is from
   * this one's: the largest |offset| over a few round trips each, taking the round trip with the smallest time.
   */
  async clockSkew() {
    let worst = 0;
    for (const p of this.procs) {
      let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
      for (let i = 0; i < 5; i++) {
        const t0 = performance.timeOrigin + performance.now();
        const { now } = await new Promise((resolve) => {
          p.once('message', resolve);
          p.send({ cmd: 'clock' });
        });
        const t1 = performance.timeOrigin + performance.now();
        if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: now - (t0 + t1) / 2 };
      }
      worst = Math.max(worst, Math.abs(best.offset) + best.rtt / 2);
    }
    return worst;
  }
  async close() {
    for (const p of this.procs) p.send({ cmd: 'exit' });
    await Promise.all(this.procs.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  }
}

/**
 * The server processes of one case: one, or with kind `gateway-N` N gateway nodes on the same broker (the
 * deployment docs/notify.md describes), the subscribers spread over them, the publishes sent to the first; with
 * `gateway-wN` one gateway with `workers: N` (a primary and N workers on one port). CPU and memory are summed over
 * every process.
 */
class Servers {
  constructor(children, ports) {
    this.children = children;
    this.ports = ports;
    this.port = ports[0];
  }
  stats() {
    // A gateway with workers is a process tree: the primary and its workers, all counted.
    const all = this.children.flatMap((c) => processTree(c.pid)).map((pid) => procStats(pid));
    return {
      cpu: all.reduce((s, x) => s + x.cpu, 0),
      rss: all.reduce((s, x) => s + x.rss, 0),
      hwm: all.reduce((s, x) => s + x.hwm, 0),
    };
  }
  subscribeUrl(i) {
    return `http://127.0.0.1:${this.ports[i % this.ports.length]}/api/v1/notifications/subscribe`;
  }
  async stop() {
    for (const c of this.children) c.kill('SIGTERM');
    await Promise.all(this.children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r)))));
  }
}

async function startServer(kind, broker, dir, a) {
  // --profile DIR: a V8 CPU profile of each server process, written when it exits (node --cpu-prof).
  const prof = a.profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.resolve(a.profile)];
  if (kind === 'raw' || kind === 'raw-socket') {
    const args = [...prof, path.join(__dirname, 'lib', 'notify-raw-server.js'), ...(kind === 'raw-socket' ? ['--socket'] : [])];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(d.toString().trim()))));
    return new Servers([child], [port]);
  }
  const m = /^gateway(?:-(\d+))?(?:-w(\d+))?$/.exec(kind);
  if (m === null) throw new Error(`unknown server kind ${kind}`);
  const nodes = Number(m[1] ?? 1);
  const workers = Number(m[2] ?? 1);
  const children = [];
  const ports = [];
  for (let n = 0; n < nodes; n++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const config = path.join(dir, `gateway-${port}.json`);
    fs.writeFileSync(
      config,
      JSON.stringify({
        host: '127.0.0.1',
        port,
        log_level: 'warn',
        node: `bench${port}`,
        cache: path.join(dir, `cache-${port}`),
        broker: { uri: `stomp://127.0.0.1:${broker.ports.stomp}`, user: broker.user, pass: broker.password },
        publish: { '*': { tokens: { bench: 'bench-token-0' } } },
        rate_limit: { rate: 0 },
        limits: { stall_timeout_seconds: 30 },
        workers,
      }),
    );
    const child = spawn(
      process.execPath,
      [...prof, path.join(__dirname, '..', 'agents', 'msgnotify', 'dist', 'gateway-main.js'), '--config', config],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    children.push(child);
    ports.push(port);
    for (let i = 0; ; i++) {
      const ok = await new Promise((resolve) => {
        http
          .get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => {
            let text = '';
            res.on('data', (c) => {
              text += c;
            });
            // With workers, up once every one of them answers for itself.
            res.on('end', () => resolve(res.statusCode === 200 && (workers === 1 || JSON.parse(text).workers === workers)));
          })
          .on('error', () => resolve(false));
      });
      if (ok) break;
      if (i > 300) throw new Error('the gateway did not come up');
      await sleep(100);
    }
  }
  return new Servers(children, ports);
}

/** The `writes` case (bench/lib/notify-writes.js): the cost of one delivery by way of writing, alone. */
function writeCosts(a) {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'lib', 'notify-writes.js'), String(a.subscribers), '10', String(a.clientProcs)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`notify-writes.js exited with ${code}`));
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      for (const l of lines) console.error(JSON.stringify(l));
      resolve(lines);
    }),
  );
}

async function waitReceived(clients, expected, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await clients.received();
    if (got >= expected || Date.now() > deadline) return got;
    await sleep(20);
  }
}

async function fanout(kind, server, a) {
  const procs = a.clientProcs;
  const clients = new Clients(procs);
  const per = Math.ceil(a.subscribers / procs);
  const t0 = Date.now();
  const conn = await clients.ask('connect', (i) => ({
    url: server.subscribeUrl(i),
    count: per,
    repos: ['fan.example.org'],
    stalled: 0,
  }));
  const connected = conn.reduce((s, r) => s + r.ok, 0);
  const connectSeconds = (Date.now() - t0) / 1000;
  await sleep(1000);
  const idle = server.stats();
  const all = [];
  const p99s = [];
  const firsts = [];
  // The first publish warms the server up (JIT, buffers) and is not counted.
  await post(server.port, body('fan.example.org', 1));
  await waitReceived(clients, connected, 30_000);
  const skew = await clients.clockSkew();
  const cpu0 = server.stats().cpu;
  const clientCpu0 = clients.cpu();
  for (let k = 2; k <= a.fanouts + 1; k++) {
    await clients.ask('reset');
    await post(server.port, body('fan.example.org', k));
    await waitReceived(clients, connected, 30_000);
    const lat = (await clients.ask('report')).flatMap((r) => r.latencies).sort((x, y) => x - y);
    all.push(...lat);
    p99s.push(pct(lat, 99));
    // The first delivery is the publish's own path (HTTP, broker, cache); the rest is the fan-out behind it.
    firsts.push(lat[0]);
  }
  const cpu = server.stats().cpu - cpu0;
  const clientCpu = clients.cpu() - clientCpu0;
  const after = server.stats();
  all.sort((x, y) => x - y);
  await clients.close();
  return {
    case: 'fanout',
    server: kind,
    subscribers: connected,
    connectSeconds,
    rssMB: idle.rss,
    peakRssMB: after.hwm,
    deliveries: all.length,
    p50: pct(all, 50),
    p99: pct(all, 99),
    max: all.at(-1),
    p99PerFanout: p99s,
    firstPerFanout: firsts,
    cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, all.length),
    clientCpuUsPerDelivery: (clientCpu * 1e6) / Math.max(1, all.length),
    clockSkewMs: skew,
  };
}

async function rate(kind, server, a, stalledFraction) {
  const procs = a.clientProcs;
  const clients = new Clients(procs);
  const repos = Array.from({ length: a.repos }, (_, i) => `rate${i}.example.org`);
  const per = Math.ceil(a.rateSubscribers / procs);
  const stalledPer = Math.round(per * stalledFraction);
  await clients.ask('connect', (i) => ({
    url: server.subscribeUrl(i),
    count: per,
    repos,
    stalled: stalledPer,
  }));
  await clients.ask('reset');
  const skew = await clients.clockSkew();
  const cpu0 = server.stats().cpu;
  const clientCpu0 = clients.cpu();
  const total = Math.round(a.rate * a.duration);
  const published = new Map(repos.map((r) => [r, 0]));
  const revision = new Map(repos.map((r) => [r, 0]));
  const start = performance.now();
  // One publisher per repository, as in real life (a repository publishes one revision after the other): a publish
  // waits for the previous one of its repository, so revisions cannot overtake each other on the way.
  const chains = new Map(repos.map((r) => [r, Promise.resolve()]));
  let errors = 0;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / a.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const repo = repos[i % repos.length];
    const rev = revision.get(repo) + 1;
    revision.set(repo, rev);
    chains.set(
      repo,
      chains.get(repo).then(() =>
        post(server.port, body(repo, rev)).then(
          () => published.set(repo, published.get(repo) + 1),
          () => errors++,
        ),
      ),
    );
  }
  await Promise.all(chains.values());
  const elapsed = (performance.now() - start) / 1000;
  const live = per * procs - stalledPer * procs;
  await waitReceived(clients, live * (total / repos.length), 10_000);
  const reports = await clients.ask('report');
  const cpu = server.stats().cpu - cpu0;
  const clientCpu = clients.cpu() - clientCpu0;
  const lat = reports.flatMap((r) => r.latencies).sort((x, y) => x - y);
  let missed = 0;
  for (const s of reports.flatMap((r) => r.subscribers)) missed += published.get(s.repo) - s.count;
  const stats = server.stats();
  await clients.close();
  return {
    case: stalledFraction > 0 ? 'stalled' : 'rate',
    server: kind,
    subscribers: per * procs,
    stalled: stalledPer * procs,
    publishes: total,
    publishErrors: errors,
    achievedRate: total / elapsed,
    deliveries: lat.length,
    missed,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat.at(-1),
    cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, lat.length),
    clientCpuUsPerDelivery: (clientCpu * 1e6) / Math.max(1, lat.length),
    clockSkewMs: skew,
    peakRssMB: stats.hwm,
  };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(__dirname, '..', 'agents', 'msgnotify', 'dist', 'gateway-main.js')))
    throw new Error('not built: npm run build');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-notify-'));
  // Other work on the machine takes CPUs from the servers and the clients alike: the load is part of the result.
  const loadBefore = os.loadavg();
  const writes = a.only.includes('writes') ? await writeCosts(a) : [];
  const cases = a.only.filter((x) => x !== 'writes');
  const broker = cases.length > 0 ? await startRabbitMQ({ exchanges: ['repository.activity'] }) : undefined;
  const results = [];
  try {
    for (const kind of a.servers) {
      for (const c of cases) {
        // A fresh server per case: one case's memory and connections do not weigh on the next.
        const server = await startServer(kind, broker, dir, a);
        try {
          const r = c === 'fanout' ? await fanout(kind, server, a) : await rate(kind, server, a, c === 'stalled' ? a.stalled : 0);
          results.push(r);
          console.error(
            JSON.stringify(r, (k, v) => (typeof v === 'number' && k !== 'subscribers' ? Math.round(v * 10) / 10 : v)),
          );
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await broker?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const f = (v, d = 1) => (v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));
  console.log(
    `\nnotify benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${os.cpus().length} CPUs, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} at the start, ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the end`,
  );
  console.log(
    'case     server      subs  stalled  deliveries  missed  p50 ms  p99 ms  max ms  CPU us/delivery  clients us  RSS MB  peak RSS MB',
  );
  for (const r of results) {
    console.log(
      [
        r.case.padEnd(8),
        r.server.padEnd(10),
        String(r.subscribers).padStart(5),
        String(r.stalled ?? 0).padStart(8),
        String(r.deliveries).padStart(11),
        String(r.missed ?? '-').padStart(7),
        f(r.p50).padStart(7),
        f(r.p99).padStart(7),
        f(r.max).padStart(7),
        f(r.cpuUsPerDelivery, 2).padStart(16),
        f(r.clientCpuUsPerDelivery, 2).padStart(11),
        f(r.rssMB).padStart(7),
        f(r.peakRssMB).padStart(12),
      ].join(' '),
    );
  }
  if (writes.length > 0) {
    console.log(`\nwrites: one SSE event to ${writes[0].subscribers} subscribers, CPU of the writing process per delivery`);
    console.log('variant  CPU us  user us  system us  loop ms');
    for (const w of writes)
      console.log(
        [
          w.variant.padEnd(8),
          f(w.cpuUs, 2).padStart(6),
          f(w.userUs, 2).padStart(8),
          f(w.systemUs, 2).padStart(10),
          f(w.loopMs).padStart(8),
        ].join(' '),
      );
  }
  const skew = Math.max(0, ...results.map((r) => r.clockSkewMs));
  if (results.length > 0) console.log(`clocks: client processes within ${f(skew, 3)} ms of the publisher's`);
  for (const r of results.filter((x) => x.case === 'fanout'))
    console.log(
      `fanout ${r.server}: per publish, first delivery ${r.firstPerFanout.map((x) => f(x)).join(', ')} ms; p99 ${r.p99PerFanout.map((x) => f(x)).join(', ')} ms`,
    );
  const get = (c, s) => results.find((r) => r.case === c && r.server === s);
  const rateG = get('rate', 'gateway');
  const stalledG = get('stalled', 'gateway');
  console.log('\ntargets (gateway; gateway-N: N nodes, gateway-wN: N workers; memory summed):');
  for (const fan of results.filter((r) => r.case === 'fanout' && r.server.startsWith('gateway'))) {
    console.log(
      `  ${fan.server}: ${fan.subscribers} SSE subscribers, peak RSS ${f(fan.peakRssMB)} MB <= 250 MB: ${fan.peakRssMB <= 250 ? 'met' : 'NOT met'}`,
    );
    console.log(
      `  ${fan.server}: one publish to all, p99 ${f(fan.p99)} ms <= 100 ms: ${fan.p99 <= 100 ? 'met' : 'NOT met'} (per publish: ${fan.p99PerFanout.map((x) => f(x)).join(', ')})`,
    );
  }
  if (rateG)
    console.log(
      `  ${rateG.subscribers} subscribers at ${f(rateG.achievedRate)} publishes/s: missed ${rateG.missed} (target 0): ${rateG.missed === 0 ? 'met' : 'NOT met'}`,
    );
  if (rateG && stalledG) {
    const worse = (stalledG.p99 / rateG.p99 - 1) * 100;
    console.log(
      `  with ${stalledG.stalled} stalled: others' p99 ${f(stalledG.p99)} ms vs ${f(rateG.p99)} ms (${f(worse)}% worse, target <= 10%): ${worse <= 10 ? 'met' : 'NOT met'}; missed ${stalledG.missed}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
