// Preloaded (node -r) into every process the broker benchmarks time, the raw clients' and the commands' alike, so
// that all are measured the same way: CPU time (user + system, every thread of the process, helper threads
// included), wall time and peak RSS, written as JSON to the file named by $BENCH_MEASURE when the process exits.
//
// The transfer is counted from the moment the process opens its first client socket (the broker connection) to its
// exit: what comes before is start-up (Node, modules, option parsing), reported apart, so that a command's start-up
// does not pass for a cost per message.

const dc = require('node:diagnostics_channel');
const fs = require('node:fs');

const out = process.env.BENCH_MEASURE;
const t0 = performance.now();
let mark;

function onClientSocket() {
  if (mark !== undefined) return;
  mark = { cpu: process.cpuUsage(), at: performance.now() };
  dc.unsubscribe('net.client.socket', onClientSocket);
}
if (out) dc.subscribe('net.client.socket', onClientSocket);

process.on('exit', () => {
  if (!out) return;
  const cpu = process.cpuUsage();
  const end = performance.now();
  const m = mark ?? { cpu: { user: 0, system: 0 }, at: t0 };
  fs.writeFileSync(
    out,
    JSON.stringify({
      // Microseconds of CPU, from the first connection to the exit.
      cpuUs: cpu.user + cpu.system - m.cpu.user - m.cpu.system,
      // Of which in the kernel (the spool's system calls, the sockets).
      sysUs: cpu.system - m.cpu.system,
      startupCpuUs: m.cpu.user + m.cpu.system,
      wallMs: end - m.at,
      // Kilobytes, the process' high-water mark (getrusage's ru_maxrss).
      maxRssKb: process.resourceUsage().maxRSS,
    }),
  );
});
