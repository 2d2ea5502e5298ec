// A process of SSE subscribers for bench/notify.js: raw sockets, one GET each, and the lightest parsing that still
// sees every event (the `id:` line and the publisher's `sentAt` in the data), so that the measurement is of the
// server, not of this side. Driven over IPC:
//   {cmd:'connect', url, count, repos, stalled}  -> {type:'connected', ok, failed}
//   {cmd:'reset'}                                -> {type:'reset'}  (forget latencies and counts)
//   {cmd:'count'}                                -> {type:'count', received}
//   {cmd:'report'}                               -> {type:'report', latencies, received, perRepo}
//   {cmd:'exit'}

const net = require('node:net');

const subs = [];
let latencies = [];
let received = 0;

function now() {
  return performance.timeOrigin + performance.now();
}

/** One subscriber: its socket, the revisions it got (per repository it listens to), and a partial-line buffer. */
function subscribe(host, port, path, repo, stalled) {
  return new Promise((resolve) => {
    const s = { repo, revisions: [], tail: '', stalled };
    const socket = net.connect({ host, port });
    s.socket = socket;
    socket.setNoDelay(true);
    let headers = false;
    socket.once('connect', () => {
      socket.write(`GET ${path}?repository=${repo} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    socket.on('data', (chunk) => {
      const text = s.tail + chunk.toString('latin1');
      if (!headers) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) {
          s.tail = text;
          return;
        }
        headers = true;
        const ok = text.startsWith('HTTP/1.1 200');
        resolve(ok ? s : undefined);
        if (!ok) return socket.destroy();
        if (stalled) {
          // Never reads again: the kernel buffers fill, then the server's.
          socket.pause();
          return;
        }
        s.tail = text.slice(end + 4);
        return consume(s, '');
      }
      consume(s, text);
    });
    socket.on('error', () => resolve(undefined));
  });
}

/** Finds complete events (`\n\n`-terminated); takes the id and sentAt of each. */
function consume(s, text) {
  const t = now();
  let from = 0;
  for (;;) {
    const end = text.indexOf('\n\n', from);
    if (end < 0) break;
    const idAt = text.indexOf('id: ', from);
    if (idAt >= 0 && idAt < end) {
      const rev = Number(text.slice(idAt + 4, text.indexOf('\n', idAt)));
      s.revisions.push(rev);
      const sentAt = text.indexOf('"sentAt":', idAt);
      if (sentAt >= 0 && sentAt < end) latencies.push(t - Number(/^[\d.]+/.exec(text.slice(sentAt + 9, sentAt + 40))[0]));
      received++;
    }
    from = end + 2;
  }
  s.tail = text.slice(from);
}

process.on('message', async (m) => {
  if (m.cmd === 'connect') {
    const u = new URL(m.url);
    let ok = 0;
    let failed = 0;
    const batch = 200;
    for (let i = 0; i < m.count; i += batch) {
      const round = [];
      for (let j = i; j < Math.min(m.count, i + batch); j++) {
        const repo = m.repos[j % m.repos.length];
        round.push(subscribe(u.hostname, Number(u.port), u.pathname, repo, j < m.stalled));
      }
      for (const s of await Promise.all(round)) {
        if (s) {
          subs.push(s);
          ok++;
        } else failed++;
      }
    }
    process.send({ type: 'connected', ok, failed });
  } else if (m.cmd === 'reset') {
    latencies = [];
    received = 0;
    for (const s of subs) s.revisions = [];
    process.send({ type: 'reset' });
  } else if (m.cmd === 'count') {
    process.send({ type: 'count', received });
  } else if (m.cmd === 'report') {
    const live = subs.filter((s) => !s.stalled);
    process.send({
      type: 'report',
      latencies,
      received,
      // For each live subscriber: its repository and the revisions it got, as a count and whether in order.
      subscribers: live.map((s) => ({ repo: s.repo, count: s.revisions.length, last: s.revisions.at(-1) ?? 0 })),
    });
  } else if (m.cmd === 'exit') {
    for (const s of subs) s.socket.destroy();
    process.exit(0);
  }
});
