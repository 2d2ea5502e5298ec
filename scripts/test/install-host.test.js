// README's host installation (scripts/install-host.js): pack every workspace, npm install -g the tarballs into a
// prefix; then the commands run by name from a plain shell whose PATH is that prefix's bin and the system
// directories, as under systemd. Third-party packages come from the npm cache that `npm ci` filled.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { root, commands } = require('../workspaces.js');

jest.setTimeout(180_000);

const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

let tmp;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-install-host-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** `bash -c script` with nothing of this process's environment but HOME and the given PATH. */
function shell(script, PATH) {
  return spawnSync('bash', ['-c', script], { cwd: tmp, env: { HOME: os.homedir(), PATH }, encoding: 'utf8', timeout: 60_000 });
}

test('install-host - npm pack + npm install -g into a prefix: stompclt, dirq (and every command) run from a plain shell', () => {
  const prefix = path.join(tmp, 'prefix');
  const PATH = [path.join(prefix, 'bin'), ...SYSTEM_PATH].join(':');
  // The commands are nowhere on that PATH before (so it is the prefix that provides them after).
  expect(shell('command -v stompclt dirq', PATH).stdout).toBe('');

  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install-host.js'), '--prefix', prefix], {
    cwd: tmp,
    encoding: 'utf8',
  });
  expect({ status: r.status, stderr: r.stderr.replace(/^npm warn install-scripts.*\n/gm, '') }).toEqual({
    status: 0,
    stderr: '',
  });
  const names = commands().map((c) => c.command);
  expect(r.stdout).toContain(`installed in ${path.join(prefix, 'bin')}: ${names.join(', ')}`);

  for (const name of names) {
    // npm's global layout: prefix/bin/<command> -> ../lib/node_modules/<package>/<bin>.
    expect(fs.realpathSync(path.join(prefix, 'bin', name))).toMatch(new RegExp(`^${prefix}/lib/node_modules/@msgbricks/`));
  }
  const help = shell('stompclt --help && dirq --help', PATH);
  expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: '' });
  expect(help.stdout).toMatch(/^usage: stompclt /m);
  expect(help.stdout).toMatch(/^dirq <command> <queue>/m);

  // The installed commands work on a queue, and the installed dirq has its native binding (carried by the tarball).
  const q = path.join(tmp, 'q');
  const work = shell(`dirq add ${q} --data hello >/dev/null && dirq count ${q}`, PATH);
  expect(work.stdout).toBe('1\n');
  const native = path.join(prefix, 'lib', 'node_modules', '@msgbricks', 'dirq', 'dist', 'native.js');
  expect(require(native).nativeStatus()).toEqual({ loaded: true });
});

test('install-host - no --prefix: usage, exit 2, nothing installed', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install-host.js')], { cwd: tmp, encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toBe(
    'install-host: --prefix DIR is required\nusage: node scripts/install-host.js --prefix DIR   (or: npm run install:host -- --prefix DIR)\n',
  );
});
