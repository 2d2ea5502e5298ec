// Benchmark: the supervisor's reaction and footprint.
//
//   npm run bench:supervise -- [--kills N] [--seconds S] [--children C] [--quick]
//
// 1. Restart latency: one supervised child (`sleep`) killed with SIGKILL N times (100); each time, the time from the
//    kill to the new child's spawn, as @msgbricks/supervisor reports it (its `ready` event; readiness none), against
//    a minimal raw loop in the same run: spawn, on 'exit' spawn again (no supervision tree, no backoff, no logs).
//    Both p50 and p99.
// 2. Footprint: the msgsupervise command with C children (100, output captured to rotated logs) for S seconds (120),
//    a random child SIGKILLed, then 50 ms of rest, over and over (the /proc scan for the pids lengthens the period);
//    the command's RSS sampled every second from /proc (start, max, end, and the slope over the second half), and
//    its CPU time per restart.
// Children are `sleep` (a tiny exec), so the figures are the supervisor's, not a child's start-up.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadConfig, Supervision } = require('../packages/supervisor/dist');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const quick = args.includes('--quick');
const KILLS = opt('kills', quick ? 20 : 100);
const SECONDS = opt('seconds', quick ? 10 : 120);
const CHILDREN = opt('children', quick ? 20 : 100);
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-supervise-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (ns) => Number(ns) / 1e6;

async function supervisedLatency() {
  const file = path.join(work, 'one.conf');
  fs.writeFileSync(
    file,
    `<simplevisor>\nlog_dir = ${work}\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nmax_restarts = 100000\nmax_time = 1\n<children>\n` +
      `<entry>\ntype = service\nname = child\ncommand = sleep 100000\nbackoff_min = 0\nbackoff_max = 0\n</entry>\n</children>\n</entry>\n`,
  );
  const sup = new Supervision(loadConfig(file));
  await sup.start();
  const out = [];
  for (let i = 0; i < KILLS; i++) {
    const pid = sup.status('top/child').pid;
    const ready = new Promise((r) => sup.once('ready', r));
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGKILL');
    await ready;
    out.push(ms(process.hrtime.bigint() - t0));
    await sleep(20);
  }
  await sup.stop();
  return out;
}

async function rawLatency() {
  const out = [];
  let child = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true });
  await new Promise((r) => child.once('spawn', r));
  for (let i = 0; i < KILLS; i++) {
    const t0 = process.hrtime.bigint();
    const next = new Promise((resolve) => {
      child.once('exit', () => {
        child = spawn('sleep', ['100000'], { stdio: 'ignore', detached: true });
        child.once('spawn', resolve);
      });
    });
    process.kill(child.pid, 'SIGKILL');
    await next;
    out.push(ms(process.hrtime.bigint() - t0));
    await sleep(20);
  }
  child.kill('SIGKILL');
  return out;
}

function procStat(pid) {
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  return { rss, cpu };
}

async function footprint() {
  const file = path.join(work, 'many.conf');
  const sock = path.join(work, 'ctl.sock');
  const entries = Array.from(
    { length: CHILDREN },
    (_, i) => `<entry>\ntype = service\nname = c${i}\ncommand = sleep 100000\nbackoff_min = 0\nbackoff_max = 0\n</entry>\n`,
  ).join('');
  fs.mkdirSync(path.join(work, 'log'));
  fs.writeFileSync(
    file,
    `<simplevisor>\ncontrol = ${sock}\nlog_dir = ${work}/log\nlog = null\n</simplevisor>\n<entry>\ntype = supervisor\nname = top\nmax_restarts = 1000000\nmax_time = 1\n<children>\n${entries}</children>\n</entry>\n`,
  );
  const cli = path.join(__dirname, '..', 'agents/supervise/bin/msgsupervise.js');
  const daemon = spawn(process.execPath, [cli, '--conf', file, 'start'], { stdio: 'ignore' });
  // The children's pids from the kernel (children of the daemon), not from the daemon: nothing asks it anything.
  const children = () => {
    const out = [];
    for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      try {
        const f = fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
        if (Number(f[1]) === daemon.pid) out.push(Number(p));
      } catch {
        // RACE: the process went away while listed.
      }
    }
    return out;
  };
  while (children().length < CHILDREN) await sleep(100);
  await sleep(1000);
  const start = procStat(daemon.pid);
  const samples = [];
  let kills = 0;
  const t0 = Date.now();
  let lastSample = 0;
  while (Date.now() - t0 < SECONDS * 1000) {
    const pids = children();
    if (pids.length > 0) {
      try {
        process.kill(pids[Math.floor(Math.random() * pids.length)], 'SIGKILL');
        kills++;
      } catch {
        // RACE: it was being restarted already.
      }
    }
    if (Date.now() - lastSample >= 1000) {
      lastSample = Date.now();
      samples.push({ t: (Date.now() - t0) / 1000, ...procStat(daemon.pid) });
    }
    await sleep(50);
  }
  await sleep(1000);
  const end = procStat(daemon.pid);
  const alive = children().length;
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  const second = samples.filter((s) => s.t >= SECONDS / 2);
  const n = second.length;
  const mt = second.reduce((a, s) => a + s.t, 0) / n;
  const mr = second.reduce((a, s) => a + s.rss, 0) / n;
  const slope = second.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0) / second.reduce((a, s) => a + (s.t - mt) ** 2, 0);
  return {
    start,
    end,
    max: Math.max(...samples.map((s) => s.rss)),
    slope,
    kills,
    alive,
    cpuPerRestart: (end.cpu - start.cpu) / kills,
  };
}

async function main() {
  console.log(
    `bench:supervise: ${KILLS} kills for latency; ${CHILDREN} children for ${SECONDS} s for the footprint (node ${process.version}, ${os.cpus().length} CPUs)`,
  );
  const sup = await supervisedLatency();
  const raw = await rawLatency();
  const f = (xs) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
  console.log(`restart latency, kill -> new child spawned (${KILLS} kills):`);
  console.log(`  msgsupervise (library): ${f(sup)}`);
  console.log(`  raw spawn-on-exit loop: ${f(raw)}`);
  const fp = await footprint();
  const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
  console.log(
    `msgsupervise command, ${CHILDREN} children, ${SECONDS} s, a random child SIGKILLed every ${Math.round((SECONDS * 1000) / fp.kills)} ms (${fp.kills} kills, ${fp.alive} children alive at the end):`,
  );
  console.log(
    `  RSS start ${mb(fp.start.rss)}, max ${mb(fp.max)}, end ${mb(fp.end.rss)}; second-half slope ${(fp.slope / 1024).toFixed(1)} KB/s`,
  );
  console.log(`  CPU ${(fp.end.cpu - fp.start.cpu).toFixed(2)} s in all, ${(fp.cpuPerRestart * 1000).toFixed(2)} ms per restart`);
}

main()
  .catch((err) => {
    console.error(`bench:supervise: ${err.stack}`);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));
