// The minimal raw server bench/notify.js compares the gateway with: plain node:http, SSE responses in a Set per
// repository, and a POST that writes one `id:`/`data:` frame to each of them: no broker, no cache, no validation,
// no buffer bounds. Prints its port on stdout. With `--socket` (server kind raw-socket), each frame goes straight to
// the socket as one pre-framed HTTP chunk, made once per publish (as the gateway does), instead of `res.write`.

const http = require('node:http');

const bySocket = process.argv.includes('--socket');
const byRepo = new Map();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://raw');
  if (req.method === 'GET') {
    const repo = url.searchParams.get('repository');
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write('retry: 3000\n\n');
    const set = byRepo.get(repo) ?? new Set();
    byRepo.set(repo, set);
    set.add(res);
    res.on('close', () => set.delete(res));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const o = JSON.parse(body.toString());
    const rev = /\nS(\d+)\n/.exec(Buffer.from(o.manifest, 'base64').toString('latin1'))[1];
    const frame = Buffer.from(`id: ${rev}\ndata: ${body}\n\n`);
    if (bySocket) {
      const chunk = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, Buffer.from('\r\n')]);
      for (const r of byRepo.get(o.repository) ?? []) r.socket.write(chunk);
    } else for (const r of byRepo.get(o.repository) ?? []) r.write(frame);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"status":"ok"}');
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
// A clean exit, so that `--cpu-prof` (bench/notify.js --profile) writes its profile.
process.on('SIGTERM', () => process.exit(0));
