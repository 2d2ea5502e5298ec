// What the test suites need that npm cannot install: Debian packages, each with a check that succeeds when it is met.
// Plain JavaScript, because `node scripts/prereqs.js` reads it before anything is built (the first step of `npm test`);
// the typed test-support module (src/brokers.ts: ensureInstalled) reads the same list, so the two never disagree.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const ACTIVEMQ_JAR = '/usr/share/activemq/bin/activemq.jar';
const ACTIVEMQ_LAUNCHER = '/usr/bin/activemq';
/** The interpreter that sees Debian's python3-dirq (a pyenv/venv python3 earlier on PATH does not). */
const PYTHON = '/usr/bin/python3';
/** Debian's Chromium, which the notify page test drives with playwright-core (npm cannot download a browser here). */
const CHROMIUM = '/usr/bin/chromium';

/** @param {string} file */
function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** @param {string} cmd */
function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** @typedef {{what: string, check: () => boolean, debs: string[]}} Requirement */

/** @type {Requirement[]} The private brokers' (src/brokers.ts). */
const brokers = [
  { what: 'RabbitMQ server', check: () => isExecutable(RABBITMQ_SERVER), debs: ['rabbitmq-server'] },
  { what: 'ActiveMQ broker', check: () => fs.existsSync(ACTIVEMQ_JAR) && isExecutable(ACTIVEMQ_LAUNCHER), debs: ['activemq'] },
  { what: 'java and keytool', check: () => onPath('java') && onPath('keytool'), debs: ['activemq'] },
  { what: 'openssl', check: () => onPath('openssl'), debs: ['openssl'] },
];

/** @type {Requirement[]} Everything `npm test` needs. */
const all = [
  {
    what: "python-dirq for the interoperability suites (Debian's python3-dirq, imported by /usr/bin/python3)",
    check: () => spawnSync(PYTHON, ['-c', 'import dirq.QueueSimple, dirq.queue'], { stdio: 'ignore' }).status === 0,
    debs: ['python3-dirq'],
  },
  {
    what: "a C compiler for @msgbricks/dirq's native binding (scripts/build-native.js)",
    check: () => spawnSync(process.env.CC || 'cc', ['--version'], { stdio: 'ignore' }).status === 0,
    debs: ['gcc', 'libc6-dev'],
  },
  ...brokers,
  {
    what: "Chromium for the notify gateway's page test (Debian's chromium, driven by playwright-core)",
    check: () => isExecutable(CHROMIUM),
    debs: ['chromium'],
  },
];

/**
 * The unmet requirements of `list`, and the apt-get command line that meets them.
 * @param {Requirement[]} list
 * @returns {{missing: Requirement[], debs: string[]}}
 */
function unmet(list) {
  const missing = list.filter((r) => !r.check());
  return { missing, debs: [...new Set(missing.flatMap((r) => r.debs))] };
}

module.exports = { all, brokers, unmet, PYTHON, RABBITMQ_SERVER, ACTIVEMQ_JAR, CHROMIUM };
