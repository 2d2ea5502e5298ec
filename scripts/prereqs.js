#!/usr/bin/env node
// Installs what npm cannot, before `npm test`: Debian packages the suites need. As root it runs apt-get;
// otherwise it fails with the exact command to run. No suite is ever skipped for want of them.

const { spawnSync } = require('node:child_process');
const brokers = require('./brokers');

/** Each requirement: a check that succeeds when it is met, and the Debian packages that meet it. */
const requirements = [
  {
    what: "python-dirq for the interoperability suites (Debian's python3-dirq, imported by /usr/bin/python3)",
    check: () => spawnSync('/usr/bin/python3', ['-c', 'import dirq.QueueSimple, dirq.queue'], { stdio: 'ignore' }).status === 0,
    debs: ['python3-dirq'],
  },
  {
    what: "a C compiler for @msgbricks/dirq's native binding (scripts/build-native.js)",
    check: () => spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0,
    debs: ['gcc', 'libc6-dev'],
  },
  // The brokers' own list, so the two can never disagree.
  ...brokers.requirements,
];

/** @param {string} cmd @param {string[]} args */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

const missing = requirements.filter((r) => !r.check());
if (missing.length === 0) process.exit(0);
const debs = [...new Set(missing.flatMap((r) => r.debs))];
const line = `apt-get update && apt-get install -y ${debs.join(' ')}`;
for (const r of missing) console.error(`prereqs: missing ${r.what}`);
if (typeof process.getuid === 'function' && process.getuid() === 0) {
  console.error(`prereqs: installing: ${line}`);
  if (run('apt-get', ['update', '-q']) && run('apt-get', ['install', '-y', '-q', ...debs])) {
    const still = missing.filter((r) => !r.check());
    if (still.length === 0) process.exit(0);
    for (const r of still) console.error(`prereqs: still missing after install: ${r.what}`);
  }
  console.error('prereqs: installation failed; the test suites need these packages');
  process.exit(1);
}
console.error(`prereqs: run as root (or with sudo): ${line}`);
process.exit(1);
