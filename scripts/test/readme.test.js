// README's "First transfer by hand", run as written: the two shell blocks are read from README.md (each follows its
// `<!-- first-transfer: ... -->` marker), so the README and this test cannot drift. The first block (the broker) runs
// in the background as the first terminal would; the second runs with bash -e, from the clone, as a user would type
// it, except that TMPDIR is this test's own directory (where both blocks put their files).

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { root } = require('../workspaces.js');

jest.setTimeout(240_000);

/** The fenced sh block that follows `<!-- first-transfer: NAME -->` in README.md. */
function block(name) {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = new RegExp(`<!-- first-transfer: ${name} -->\\s*\`\`\`sh\\n([\\s\\S]*?)\`\`\`\\n`).exec(readme);
  if (!m) throw new Error(`README.md has no sh block after <!-- first-transfer: ${name} -->`);
  return m[1];
}

let tmp;
let broker;
let brokerExit;
let brokerOutput = '';

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-readme-'));
});

afterAll(async () => {
  if (broker !== undefined && broker.exitCode === null && broker.signalCode === null) {
    process.kill(-broker.pid, 'SIGTERM');
    await brokerExit;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('README - the first transfer by hand: spool, send to RabbitMQ, receive back, show, as written', async () => {
  // A user's shell: the npm ci tree's node_modules/.bin is not on its PATH (npm test puts it there); offline npm, so
  // that a command that is not linked fails instead of being looked for on the registry.
  const PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((d) => !d.endsWith(`${path.sep}node_modules${path.sep}.bin`))
    .join(path.delimiter);
  const env = { HOME: os.homedir(), PATH, TMPDIR: tmp, LANG: 'C.UTF-8', npm_config_offline: 'true' };

  broker = spawn('bash', ['-c', block('broker')], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  broker.stdout.on('data', (d) => {
    brokerOutput += d;
  });
  broker.stderr.on('data', (d) => {
    brokerOutput += d;
  });
  brokerExit = new Promise((resolve) => broker.on('exit', (code, signal) => resolve({ code, signal })));
  const envFile = path.join(tmp, 'msgbricks-rabbitmq.env');
  const deadline = Date.now() + 150_000;
  while (!fs.existsSync(envFile)) {
    if (broker.exitCode !== null || Date.now() > deadline) throw new Error(`the broker block did not start:\n${brokerOutput}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(fs.readFileSync(envFile, 'utf8')).toMatch(/^BROKER_STOMP_PORT=\d+$/m);

  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', block('transfer')], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
  // What the commands print: the counts (4 spooled, 0 left, 4 received), stompclt's statistics, the message shown.
  const counts = r.stdout.split('\n').filter((l) => /^\d+$/.test(l));
  expect(counts).toEqual(['4', '0', '4']);
  expect(r.stdout).toMatch(/^count: 4 messages$/m);
  expect(r.stdout).toMatch(/^sent: 4, dropped: 0, filtered: 0, dead-lettered: 0, released: 0, stopped by: end$/m);
  expect(r.stdout).toMatch(/"body": ?"hello, broker"/);
  expect(r.stderr).toMatch(/transfer finished received=4 sent=4 .*stoppedBy=count/);

  // On disk: $D (mktemp -d in TMPDIR) holds an empty out spool and 4 elements in the in spool, python-dirq's layout.
  const [dir, ...others] = fs.readdirSync(tmp).filter((f) => f.startsWith('tmp.'));
  expect(others).toEqual([]);
  const elements = (q) =>
    fs
      .readdirSync(path.join(tmp, dir, q))
      .flatMap((b) => fs.readdirSync(path.join(tmp, dir, q, b)).map((e) => `${b}/${e}`))
      .sort();
  expect(elements('out')).toEqual([]);
  const received = elements('in');
  expect(received).toHaveLength(4);
  for (const e of received) expect(e).toMatch(/^[0-9a-f]{8}\/[0-9a-f]{14}$/);
  const bodies = received.map((e) => JSON.parse(fs.readFileSync(path.join(tmp, dir, 'in', e), 'utf8')).body);
  expect(bodies.sort()).toEqual(['0', '1', '2', 'hello, broker']);

  // Ctrl-C in the first terminal: the broker stops and its env file goes.
  process.kill(-broker.pid, 'SIGINT');
  expect(await brokerExit).toEqual({ code: 0, signal: null });
  expect(fs.existsSync(envFile)).toBe(false);
});
