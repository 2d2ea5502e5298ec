// A process of SSE subscribers for bench/notify.js: raw sockets, one GET each, and the lightest reading that still
// sees every event, so that the measurement is of the server, not of this side. Each socket reads into one buffer
// shared by the process (net's `onread`: no Buffer, no stream machinery, no string per read) and the bytes are
// scanned in place for the end of each event (`\n\n`), its `id:` and the publisher's `sentAt` (a key added to the
// published JSON, which the gateway passes on byte for byte). The latency is this process's
// `performance.timeOrigin + performance.now()` at the read minus `sentAt`, taken the same way by the publisher: the
// `clock` command measures how far apart the two processes' clocks are. Driven over IPC:
//   {cmd:'connect', url, count, repos, stalled}  -> {type:'connected', ok, failed}
//   {cmd:'reset'}                                -> {type:'reset'}  (forget latencies and counts)
//   {cmd:'count'}                                -> {type:'count', received}
//   {cmd:'clock'}                                -> {type:'clock', now}
//   {cmd:'report'}                               -> {type:'report', latencies, received, subscribers}
//   {cmd:'exit'}

const net = require('node:net');

const subs = [];
let latencies = [];
let received = 0;
const shared = Buffer.alloc(256 * 1024);

const LF = 10;
const ID = Buffer.from('id: ');
const SENT_AT = Buffer.from('"sentAt":');
const HEADERS_END = Buffer.from('\r\n\r\n');
const OK = Buffer.from('HTTP/1.1 200');

function now() {
  return performance.timeOrigin + performance.now();
}

/** The decimal number at b[i...] (digits, an optional fraction), without making a string. */
function numberAt(b, i, end) {
  let v = 0;
  while (i < end && b[i] >= 48 && b[i] <= 57) v = v * 10 + (b[i++] - 48);
  if (i < end && b[i] === 46) {
    let scale = 0.1;
    for (i++; i < end && b[i] >= 48 && b[i] <= 57; i++, scale /= 10) v += (b[i] - 48) * scale;
  }
  return v;
}

/** Finds complete events in b (a read, after what was left of the previous one); takes the id and sentAt of each. */
function consume(s, b) {
  const n = b.length;
  const t = now();
  let from = 0;
  for (;;) {
    let end = -1;
    for (let i = b.indexOf(LF, from); i >= 0 && i < n - 1; i = b.indexOf(LF, i + 1)) {
      if (b[i + 1] === LF) {
        end = i;
        break;
      }
    }
    if (end < 0) break;
    const idAt = b.indexOf(ID, from);
    if (idAt >= 0 && idAt < end) {
      s.revisions.push(numberAt(b, idAt + ID.length, end));
      const sentAt = b.indexOf(SENT_AT, idAt);
      if (sentAt >= 0 && sentAt < end) latencies.push(t - numberAt(b, sentAt + SENT_AT.length, end));
      received++;
    }
    from = end + 2;
  }
  // An event cut by the read is kept for the next one (rare: the servers write each event whole). What is left
  // after a whole event is usually only chunked framing (CRLF, the next chunk's hex length), not worth a copy.
  s.tail = startsEvent(b, from) ? Buffer.from(b.subarray(from)) : undefined;
}

/** Whether b[from...] holds more than chunked framing (CR, LF, hex digits): the start of an event. */
function startsEvent(b, from) {
  for (let i = from; i < b.length; i++) {
    const c = b[i];
    if (!(c === 13 || c === LF || (c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return true;
  }
  return false;
}

/** One subscriber: its socket, the revisions it got, and what was left of an event cut across two reads. */
function subscribe(host, port, path, repo, stalled) {
  return new Promise((resolve) => {
    const s = { repo, revisions: [], tail: undefined, stalled, socket: undefined };
    let headers = false;
    const onRead = (n) => {
      let b = shared.subarray(0, n);
      if (s.tail !== undefined) {
        b = Buffer.concat([s.tail, b]);
        s.tail = undefined;
      }
      if (!headers) {
        const end = b.indexOf(HEADERS_END);
        if (end < 0) {
          s.tail = Buffer.from(b);
          return;
        }
        headers = true;
        const ok = b.subarray(0, OK.length).equals(OK);
        resolve(ok ? s : undefined);
        if (!ok) {
          s.socket.destroy();
          return false;
        }
        // Never reads again: the kernel buffers fill, then the server's.
        if (stalled) return false;
        return void consume(s, Buffer.from(b.subarray(end + HEADERS_END.length)));
      }
      consume(s, b);
    };
    s.socket = net.connect({ host, port, onread: { buffer: shared, callback: onRead } });
    s.socket.setNoDelay(true);
    s.socket.once('connect', () => {
      s.socket.write(`GET ${path}?repository=${repo} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    s.socket.on('error', () => resolve(undefined));
  });
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
  } else if (m.cmd === 'clock') {
    process.send({ type: 'clock', now: now() });
  } else if (m.cmd === 'report') {
    const live = subs.filter((s) => !s.stalled);
    process.send({
      type: 'report',
      latencies,
      received,
      // For each live subscriber: its repository and how many revisions it got.
      subscribers: live.map((s) => ({ repo: s.repo, count: s.revisions.length, last: s.revisions.at(-1) ?? 0 })),
    });
  } else if (m.cmd === 'exit') {
    for (const s of subs) s.socket.destroy();
    process.exit(0);
  }
});
