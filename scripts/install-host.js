#!/usr/bin/env node
// Installs the msgbricks commands (every workspace's `bin`: dirq, msggen, stompclt, amqpclt, ...) on a host, under a
// prefix, as npm installs a global package: PREFIX/bin/<command> -> PREFIX/lib/node_modules/@msgbricks/<pkg>/bin/....
// With PREFIX/bin on the PATH (/usr/local is the usual prefix, whose bin already is), `stompclt --help` works from any
// shell, as the systemd unit (spool-examples/systemd) expects.
//
// Usage: node scripts/install-host.js --prefix DIR      (or: npm run install:host -- --prefix DIR)
//
// How: build, `npm pack` every workspace, then `npm install -g --prefix DIR` of all the tarballs at once. The
// @msgbricks packages are on no registry: installed together, each one's @msgbricks dependencies are found among
// the others (npm resolves a global package's dependency from its siblings). npm still asks the scope's registry
// first, so the scope is pointed at a closed loopback port: nothing named @msgbricks/* can ever come from the public
// registry (whoever might publish there). Third-party dependencies come from the npm registry, from the cache first
// (--prefer-offline): with the cache warm from `npm ci`, nothing is downloaded.
//
// dirq's native binding (packages/dirq/build/dirq.node, built by scripts/build-native.js) goes in the tarball; it
// is Node-API, so it loads in any Node >= 20 on the same OS and architecture. Where it was not built, or does not load
// on the host, the queues use their JavaScript path (packages/dirq/src/native.ts): same files, slower.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { commands } = require('./workspaces.js');

const root = path.join(__dirname, '..');
const USAGE = 'usage: node scripts/install-host.js --prefix DIR   (or: npm run install:host -- --prefix DIR)';
/** Where npm is told the @msgbricks scope lives: port 9 (discard) on loopback, where nothing answers. */
const NO_REGISTRY = 'http://127.0.0.1:9/';

function parseArgs(argv) {
  let prefix;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--prefix' && i + 1 < argv.length) prefix = argv[++i];
    else if (a.startsWith('--prefix=')) prefix = a.slice('--prefix='.length);
    else if (a === '-h' || a === '--help') return { help: true };
    else return { error: `unexpected argument: ${a}` };
  }
  if (!prefix) return { error: '--prefix DIR is required' };
  return { prefix: path.resolve(prefix) };
}

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  return r;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  if (args.error) {
    console.error(`install-host: ${args.error}\n${USAGE}`);
    return 2;
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  run(npm, ['run', '--silent', 'build'], { cwd: root });
  const native = path.join(root, 'packages', 'dirq', 'build', 'dirq.node');
  if (!fs.existsSync(native)) {
    const why = path.join(root, 'packages', 'dirq', 'build', 'build-failure.txt');
    const reason = fs.existsSync(why) ? fs.readFileSync(why, 'utf8').trim() : 'not built';
    console.error(`install-host: dirq's native binding is not included (${reason}): the queues use their JavaScript path`);
  }
  const packs = fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-install-host-'));
  try {
    run(npm, ['pack', '--workspaces', '--pack-destination', packs, '--loglevel=warn'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarballs = fs
      .readdirSync(packs)
      .filter((f) => f.endsWith('.tgz'))
      .map((f) => path.join(packs, f));
    fs.mkdirSync(args.prefix, { recursive: true });
    // From the packs directory: outside the workspace, so that the project's own settings play no part.
    run(
      npm,
      [
        'install',
        '--global',
        '--prefix',
        args.prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=warn',
        `--@msgbricks:registry=${NO_REGISTRY}`,
        '--fetch-retries=0',
        ...tarballs,
      ],
      { cwd: packs },
    );
  } finally {
    fs.rmSync(packs, { recursive: true, force: true });
  }
  const bin = path.join(args.prefix, 'bin');
  console.log(
    `installed in ${bin}: ${commands()
      .map((c) => c.command)
      .join(', ')}`,
  );
  const onPath = (process.env.PATH ?? '').split(path.delimiter).includes(bin);
  if (!onPath) console.log(`add ${bin} to PATH (e.g. export PATH="${bin}:$PATH") to run them by name`);
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(`install-host: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
}
