// The commands against a real RabbitMQ: msgnotify-gateway as configured by a file, msgnotify -p and -s against it
// (exit codes, -m, -c), and a gateway restart during a continuous subscription that loses nothing.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import { formatManifest } from '@msgbricks/notify';
import type { Broker } from '@msgbricks/test-support';
import { freePorts, removeDir, startRabbitMQ, tempDir } from '@msgbricks/test-support';
import WebSocket from 'ws';
import { request, Subscriber } from '../../../packages/notify/test/helpers';
import { makeSignedRepo, type SignedRepo } from '../../../packages/notify/test/signed-repo';
import { type Running, run, start } from './run';

jest.setTimeout(300_000);

let rabbit: Broker;
let tmp: string;
const running: Running[] = [];

beforeAll(async () => {
  rabbit = await startRabbitMQ({ exchanges: ['repository.activity'] });
  tmp = tempDir('msgnotify-interop-');
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
  }
});

afterAll(async () => {
  await rabbit?.stop();
  if (tmp) removeDir(tmp);
});

function launch(command: 'msgnotify' | 'msgnotify-gateway', args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const r = start(command, args, env);
  running.push(r);
  return r;
}

/** A gateway node from a YAML file, as an operator runs it. */
async function gateway(node: string, port: number, extra: string[] = []): Promise<Running> {
  const file = path.join(tmp, `${node}.yaml`);
  fs.writeFileSync(
    file,
    [
      'host: 127.0.0.1',
      `port: ${port}`,
      'log_level: debug',
      `node: ${node}`,
      `cache: ${path.join(tmp, `cache-${node}`)}`,
      'broker:',
      `  uri: stomp://${rabbit.host}:${rabbit.ports.stomp}`,
      `  user: ${rabbit.user}`,
      `  pass: ${rabbit.password}`,
      'publish:',
      "  '*':",
      '    tokens: { release: release-token-1 }',
      ...extra,
      '',
    ].join('\n'),
  );
  const g = launch('msgnotify-gateway', ['--config', file]);
  await g.waitFor(/listening on/);
  await g.waitFor(/broker session with/);
  return g;
}

async function until(pred: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function manifestFile(repository: string, revision: number): string {
  const file = path.join(tmp, `${repository}-${revision}.cvmfspublished`);
  fs.writeFileSync(file, formatManifest({ C: 'c'.repeat(40), S: revision, N: repository, T: 1700000000 }));
  return file;
}

const pub = (port: number, file: string, token = 'release-token-1') =>
  run('msgnotify', ['-p', '-u', `http://127.0.0.1:${port}/api/v1`, '-r', file, '-T', token]);

test('msgnotify - -p publishes a file or a downloaded manifest, -s reports the first newer revision and exits 0', async () => {
  const [port] = (await freePorts(1)) as [number];
  await gateway('cli-a', port);
  const url = `http://127.0.0.1:${port}/api/v1`;
  const sub = launch('msgnotify', ['-s', '--no-verify', '-u', url, '-t', 'cli.example.org', '-m', '1', '-v']);
  await sub.waitFor(/subscribed to cli\.example\.org/);
  const first = await pub(port, manifestFile('cli.example.org', 1));
  expect(first).toMatchObject({ code: 0 });
  const denied = await pub(port, manifestFile('cli.example.org', 2), 'wrong-token');
  expect(denied.code).toBe(9);
  expect(denied.stderr).toContain('HTTP 403');
  // Served over HTTP as a stratum 0 does: the client downloads /.cvmfspublished.
  const body = fs.readFileSync(manifestFile('cli.example.org', 2));
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/cvmfs/cli.example.org/.cvmfspublished' ? 200 : 404);
    res.end(req.url === '/cvmfs/cli.example.org/.cvmfspublished' ? body : undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const web = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cvmfs/cli.example.org`;
    expect((await run('msgnotify', ['-p', '-u', url, '-r', web, '-T', 'release-token-1'])).code).toBe(0);
  } finally {
    server.close();
  }
  expect(await sub.exited).toBe(0);
  // Revision 1 is not greater than -m 1: only 2 is reported.
  expect(sub.stdout).toBe('repository cli.example.org is now at revision 2\n');
});

test('msgnotify - -s -c across a gateway restart: what was published meanwhile on another node arrives, nothing twice', async () => {
  const [portA, portB] = (await freePorts(2)) as [number, number];
  let a = await gateway('cont-a', portA);
  await gateway('cont-b', portB);
  const sub = launch('msgnotify', [
    '-s',
    '-c',
    '--no-verify',
    '-u',
    `http://127.0.0.1:${portA}/api/v1`,
    '-t',
    'cont.example.org',
  ]);
  // Subscribed before or after this publish, it gets revision 1 (live, or from the cache).
  expect((await pub(portA, manifestFile('cont.example.org', 1))).code).toBe(0);
  await sub.waitFor(/revision 1\n/);
  a.child.kill('SIGTERM');
  expect(await a.exited).toBe(0);
  running.splice(running.indexOf(a), 1);
  // Node a is down: node b takes the publish, and a's durable queue keeps it for a.
  expect((await pub(portB, manifestFile('cont.example.org', 2))).code).toBe(0);
  a = await gateway('cont-a', portA);
  await sub.waitFor(/revision 2\n/, 60_000);
  expect((await pub(portA, manifestFile('cont.example.org', 3))).code).toBe(0);
  await sub.waitFor(/revision 3\n/);
  expect(sub.stdout).toBe(
    [
      'repository cont.example.org is now at revision 1',
      'repository cont.example.org is now at revision 2',
      'repository cont.example.org is now at revision 3',
      '',
    ].join('\n'),
  );
  expect(sub.child.exitCode).toBe(null);
});

test('msgnotify - -s -k verifies each manifest: a forged signature is ignored, the next good revision reported', async () => {
  const [port] = (await freePorts(1)) as [number];
  await gateway('sig-a', port);
  const url = `http://127.0.0.1:${port}/api/v1`;
  const repo = makeSignedRepo(tmp, 'signed.example.org');
  const sub = launch('msgnotify', ['-s', '-u', url, '-t', 'signed.example.org', '-k', repo.masterPubFile, '-r', repo.dir, '-v']);
  await forgedIgnoredGoodReported(sub, port, repo, 5);
});

/** `sub`, subscribed to `repo`, ignores revision `bad` (a forged signature) with a warning, reports `bad + 1`, exits 0. */
async function forgedIgnoredGoodReported(sub: Running, port: number, repo: SignedRepo, bad: number): Promise<void> {
  const name = repo.repository.replaceAll('.', '\\.');
  await sub.waitFor(new RegExp(`subscribed to ${name}`));
  repo.publish(bad, true);
  expect((await pub(port, repo.dir)).code).toBe(0);
  await sub.waitFor(new RegExp(`ignored revision ${bad} of ${name}: the manifest's signature does not verify`));
  repo.publish(bad + 1);
  expect((await pub(port, repo.dir)).code).toBe(0);
  expect(await sub.exited).toBe(0);
  expect(sub.stdout).toBe(`repository ${repo.repository} is now at revision ${bad + 1}\n`);
}

test('msgnotify - -s: a whitelist that cannot be had yet is tried again, and the revision reported once it can', async () => {
  const [port] = (await freePorts(1)) as [number];
  await gateway('sig-late', port);
  const repo = makeSignedRepo(tmp, 'late.example.org');
  const whitelist = path.join(repo.dir, '.cvmfswhitelist');
  fs.renameSync(whitelist, `${whitelist}.away`);
  const args = ['-s', '-u', `http://127.0.0.1:${port}/api/v1`, '-t', 'late.example.org', '-k', repo.masterPubFile];
  const sub = launch('msgnotify', [...args, '-r', repo.dir, '-v']);
  await sub.waitFor(/subscribed to late\.example\.org/);
  repo.publish(1);
  expect((await pub(port, repo.dir)).code).toBe(0);
  await sub.waitFor(/cannot check revision 1 yet \(cannot get \.cvmfswhitelist: .*ENOENT\): again in 1 s/);
  fs.renameSync(`${whitelist}.away`, whitelist);
  expect(await sub.exited).toBe(0);
  expect(sub.stdout).toBe('repository late.example.org is now at revision 1\n');
});

test('msgnotify - -s without -k and -r finds the keys and the server URLs in the cvmfs client configuration', async () => {
  const [port] = (await freePorts(1)) as [number];
  await gateway('sig-b', port);
  const url = `http://127.0.0.1:${port}/api/v1`;
  const repo = makeSignedRepo(tmp, 'found.example.org');
  // A stratum serving the repository directory, as CVMFS_SERVER_URL's second entry; the first one is down.
  const stratum = http.createServer((req, res) => {
    const file = path.join(tmp, decodeURIComponent((req.url ?? '/').replace(/^\/cvmfs\//, '/')));
    fs.readFile(file, (err, data) => (err ? res.writeHead(404).end() : res.end(data)));
  });
  await new Promise<void>((r) => stratum.listen(0, '127.0.0.1', r));
  const etc = path.join(tmp, 'etc-cvmfs');
  fs.mkdirSync(path.join(etc, 'domain.d'), { recursive: true });
  fs.mkdirSync(path.join(etc, 'keys', 'example.org'), { recursive: true });
  fs.copyFileSync(repo.masterPubFile, path.join(etc, 'keys', 'example.org', 'found.example.org.pub'));
  const s1 = `http://127.0.0.1:${(stratum.address() as AddressInfo).port}/cvmfs/@fqrn@`;
  fs.writeFileSync(
    path.join(etc, 'domain.d', 'example.org.conf'),
    `CVMFS_SERVER_URL="http://127.0.0.1:1/cvmfs/@fqrn@;${s1}"\nCVMFS_KEYS_DIR=${etc}/keys/example.org\n`,
  );
  try {
    const sub = launch('msgnotify', ['-s', '-u', url, '-t', 'found.example.org', '-v'], { MSGNOTIFY_CVMFS_CONFIG_DIR: etc });
    await sub.waitFor(/verifying found\.example\.org with/);
    expect(sub.stderr).toContain(
      `verifying found.example.org with ${etc}/keys/example.org/found.example.org.pub (CVMFS_KEYS_DIR in ${etc}/domain.d/example.org.conf)`,
    );
    await forgedIgnoredGoodReported(sub, port, repo, 3);
    // Another master key in the configuration: the whitelist does not verify, the revision is ignored.
    fs.writeFileSync(
      path.join(etc, 'keys', 'example.org', 'found.example.org.pub'),
      makeSignedRepo(tmp, 'other.example.org').masterPub,
    );
    const sub2 = launch('msgnotify', ['-s', '-m', '4', '-u', url, '-t', 'found.example.org', '-v'], {
      MSGNOTIFY_CVMFS_CONFIG_DIR: etc,
    });
    await sub2.waitFor(/subscribed to found\.example\.org/);
    repo.publish(5);
    expect((await pub(port, repo.dir)).code).toBe(0);
    await sub2.waitFor(/ignored revision 5 of found\.example\.org: the whitelist is not signed by any of the master keys/);
    expect(sub2.stdout).toBe('');
  } finally {
    stratum.close();
  }
});

test('msgnotify-gateway - verify: a forged manifest is refused, msgnotify -p exits 9 saying why; a good one goes through', async () => {
  const [port] = (await freePorts(1)) as [number];
  const root = path.join(tmp, 'verified');
  const repo = makeSignedRepo(root, 'checked.example.org');
  await gateway('verify-a', port, ['verify:', "  '*':", `    keys: ${repo.masterPubFile}`, `    url: ${root}/@fqrn@`]);
  const sub = launch('msgnotify', [
    '-s',
    '-c',
    '-u',
    `http://127.0.0.1:${port}/api/v1`,
    '-t',
    'checked.example.org',
    '--no-verify',
    '-v',
  ]);
  await sub.waitFor(/subscribed to checked\.example\.org/);
  repo.publish(1, true);
  const forged = await pub(port, repo.dir);
  expect(forged.code).toBe(9);
  expect(forged.stderr).toContain('HTTP 400 {"status":"error","reason":"invalid_signature"');
  repo.publish(2);
  expect((await pub(port, repo.dir)).code).toBe(0);
  await sub.waitFor(/revision 2/);
  expect(sub.stdout).toBe('repository checked.example.org is now at revision 2\n');
});

test('msgnotify-gateway - workers: 2 share the port; a killed worker is restarted with the cache; SIGTERM stops them all with 0', async () => {
  const [port] = (await freePorts(1)) as [number];
  const g = await gateway('cluster-a', port, ['workers: 2']);
  await g.waitFor(/w1\[\d+\] info: listening on/);
  await g.waitFor(/w2\[\d+\] info: listening on/);
  const api = `http://127.0.0.1:${port}/api/v1`;
  const subs: Subscriber[] = [];
  const subscribe = async () => {
    const s = new Subscriber(api, 'cluster.example.org', { query: true });
    subs.push(s);
    await s.until(() => s.status === 200);
    return s;
  };
  try {
    const first = [];
    for (let i = 0; i < 8; i++) first.push(await subscribe());
    expect((await pub(port, manifestFile('cluster.example.org', 1))).code).toBe(0);
    for (const s of first) await s.until(() => s.revisions().includes(1));
    // Every worker's figures, whichever worker answers; the broker side counted once, by the primary.
    const metrics = (await request(`http://127.0.0.1:${port}/metrics`)).text;
    expect(metrics).toMatch(/^msgnotify_workers 2$/m);
    expect(metrics).toMatch(/^msgnotify_subscribers 8$/m);
    expect(metrics).toMatch(/^msgnotify_deliveries_total 8$/m);
    expect(metrics).toMatch(/^msgnotify_received_total\{outcome="stored"\} 1$/m);
    expect(metrics).toMatch(/^msgnotify_publishes_total\{outcome="ok"\} 1$/m);
    // One spool, the primary's: one element for the one repository.
    const cache = path.join(tmp, 'cache-cluster-a');
    const elements = fs.readdirSync(cache).flatMap((d) => fs.readdirSync(path.join(cache, d)).map((f) => `${d}/${f}`));
    expect(elements).toEqual([expect.stringMatching(/^[0-9a-f]{8}\/[0-9a-f]{14}$/)]);

    const w1 = Number(/w1\[(\d+)\] info: listening/.exec(g.stderr)?.[1]);
    process.kill(w1, 'SIGKILL');
    await g.waitFor(/worker 1 \(pid \d+\) exited \(SIGKILL\): restarting it/);
    // Round-robin put subscribers on both: some went with worker 1, the others stay.
    const deadline = Date.now() + 10_000;
    while (!first.some((s) => s.closed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The other closes of the same kill arrive together.
    await new Promise((r) => setTimeout(r, 500));
    const survivors = first.filter((s) => !s.closed);
    expect(survivors.length).toBeGreaterThan(0);
    expect(survivors.length).toBeLessThan(8);
    await g.waitFor(/w1\[\d+\] info: listening on[\s\S]*w1\[\d+\] info: listening on/);
    expect(survivors.every((s) => !s.closed)).toBe(true);
    // With worker 2 down for a second, new subscribers all land on the restarted worker 1: it got the cache from the
    // primary when it started (revision 1 was published before).
    const w2 = Number(/w2\[(\d+)\] info: listening/.exec(g.stderr)?.[1]);
    process.kill(w2, 'SIGKILL');
    await g.waitFor(/worker 2 \(pid \d+\) exited \(SIGKILL\): restarting it/);
    const late = [await subscribe(), await subscribe()];
    for (const s of late) await s.until(() => s.revisions().length === 1);
    expect(late.map((s) => s.revisions())).toEqual([[1], [1]]);
    await g.waitFor(/w2\[\d+\] info: listening on[\s\S]*w2\[\d+\] info: listening on/);
    const more = [await subscribe(), await subscribe()];
    for (const s of more) await s.until(() => s.revisions().length === 1);
    // cvmfs-notify's WebSocket API through the workers too: the cached revision, then the next one.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/subscribe`, ['json']);
    const frames: string[] = [];
    ws.on('message', (data: Buffer) => frames.push(data.toString()));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(Buffer.from('{"version":1,"repository":"cluster.example.org"}'), { binary: true });
    await until(() => frames.length === 1, 'the cached revision over the WebSocket');
    expect((await pub(port, manifestFile('cluster.example.org', 2))).code).toBe(0);
    await until(() => frames.length === 2, 'revision 2 over the WebSocket');
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.close();
    await closed;
    expect(frames.map((f) => JSON.parse(f).repository)).toEqual(['cluster.example.org', 'cluster.example.org']);
    for (const s of [...late, ...more]) await s.until(() => s.revisions().includes(2));
    expect([...late, ...more].map((s) => s.revisions())).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    // RACE: the server may see the WebSocket's close a moment after the client does.
    let after = '';
    for (let i = 0; i < 100 && !/^msgnotify_subscribers 4$/m.test(after); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 50));
      after = (await request(`http://127.0.0.1:${port}/metrics`)).text;
    }
    expect(after).toMatch(/^msgnotify_subscribers 4$/m);
    expect(after).toMatch(/^msgnotify_received_total\{outcome="stored"\} 2$/m);

    const pids = [...g.stderr.matchAll(/w[12]\[(\d+)\] info: listening/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    g.child.kill('SIGTERM');
    expect(await g.exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  } finally {
    for (const s of subs) s.close();
  }
});

/** A gateway configuration on the port `taken` holds, with the private broker. */
function takenPortConfig(taken: net.Server, node: string, extra: string[] = []): string {
  const port = (taken.address() as AddressInfo).port;
  const file = path.join(tmp, `${node}.yaml`);
  fs.writeFileSync(
    file,
    [
      'host: 127.0.0.1',
      `port: ${port}`,
      `node: ${node}`,
      `cache: ${path.join(tmp, `cache-${node}`)}`,
      `broker: { uri: "stomp://${rabbit.host}:${rabbit.ports.stomp}", user: ${rabbit.user}, pass: ${rabbit.password} }`,
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

test('msgnotify-gateway - workers: 2 on a port already taken exits 1, naming it, instead of restarting workers for ever', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const file = takenPortConfig(taken, 'taken-a', ['workers: 2']);
    const g = launch('msgnotify-gateway', ['--config', file]);
    expect(await g.exited).toBe(1);
    expect(g.stderr).toMatch(/EADDRINUSE/);
    expect(g.stderr).toMatch(/worker \d exited \(1\) before it listened: stopping/);
    expect(g.stderr).not.toMatch(/restarting/);
  } finally {
    taken.close();
  }
});

test('msgnotify-gateway - one process on a port already taken exits 1 instead of keeping its broker session', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const file = takenPortConfig(taken, 'taken-one');
    // The broker session starts before the port is bound: it used to outlive the failure, and the command never ended.
    const g = launch('msgnotify-gateway', ['--config', file]);
    expect(await g.exited).toBe(1);
    expect(g.stderr).toMatch(/EADDRINUSE/);
  } finally {
    taken.close();
  }
});
