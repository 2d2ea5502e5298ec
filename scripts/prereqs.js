#!/usr/bin/env node
// Installs what npm cannot, before `npm test`: Debian packages the suites need. As root it runs apt-get;
// otherwise it fails with the exact command to run. No suite is ever skipped for want of them.

const { spawnSync } = require('node:child_process');
// The list lives with the test support (plain JavaScript: this runs before the build), which the brokers' launcher
// reads too, so the two can never disagree.
const { all, unmet } = require('../packages/test-support/requirements');

/** @param {string} cmd @param {string[]} args */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

const { missing, debs } = unmet(all);
if (missing.length === 0) process.exit(0);
const line = `apt-get update && apt-get install -y ${debs.join(' ')}`;
for (const r of missing) console.error(`prereqs: missing ${r.what}`);
if (typeof process.getuid === 'function' && process.getuid() === 0) {
  console.error(`prereqs: installing: ${line}`);
  if (run('apt-get', ['update', '-q']) && run('apt-get', ['install', '-y', '-q', ...debs])) {
    const still = unmet(missing).missing;
    if (still.length === 0) process.exit(0);
    for (const r of still) console.error(`prereqs: still missing after install: ${r.what}`);
  }
  console.error('prereqs: installation failed; the test suites need these packages');
  process.exit(1);
}
console.error(`prereqs: run as root (or with sudo): ${line}`);
process.exit(1);
