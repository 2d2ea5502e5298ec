#!/usr/bin/env node
// Starts one private broker for manual work and prints its ports as JSON; Ctrl-C or SIGTERM stops it.
// Usage: node scripts/brokers/run.js rabbitmq|activemq [--tls] [--write-env FILE] [--exchange NAME]...
// --write-env FILE also writes the ports and credentials as shell assignments (BROKER_STOMP_PORT=...), for `. FILE` in
// another shell (README's "First transfer by hand"); the file is removed when the broker stops, so a file that exists
// names a broker that runs. The launcher is @msgbricks/test-support's, built into packages/test-support/dist (`npm run
// build`).
// --exchange NAME (RabbitMQ, repeatable) declares a durable direct exchange at start, e.g. repository.activity for the
// notify gateway (RabbitMQ's STOMP plugin cannot declare exchanges).

const fs = require('node:fs');
const { ensureInstalled, startActiveMQ, startRabbitMQ } = require('../../packages/test-support');

const USAGE = 'usage: node scripts/brokers/run.js rabbitmq|activemq [--tls] [--write-env FILE] [--exchange NAME]...';

function parseArgs(argv) {
  const args = { kind: undefined, tls: false, envFile: undefined, exchanges: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--tls') args.tls = true;
    else if (a === '--write-env' && i + 1 < argv.length) args.envFile = argv[++i];
    else if (a.startsWith('--write-env=')) args.envFile = a.slice('--write-env='.length);
    else if (a === '--exchange' && i + 1 < argv.length) args.exchanges.push(argv[++i]);
    else if ((a === 'rabbitmq' || a === 'activemq') && args.kind === undefined) args.kind = a;
    else return undefined;
  }
  if (args.exchanges.length > 0 && args.kind !== 'rabbitmq') return undefined;
  return args.kind === undefined || args.envFile === '' ? undefined : args;
}

/** `BROKER_STOMP_PORT=61613` and co.: one line per port (stompSsl -> STOMP_SSL), host and credentials. */
function envLines(broker) {
  const lines = [`# ${broker.name}, written by scripts/brokers/run.js (removed when it stops)`, `BROKER_KIND=${broker.kind}`];
  lines.push(`BROKER_HOST=${broker.host}`);
  for (const [key, port] of Object.entries(broker.ports)) {
    lines.push(`BROKER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT=${port}`);
  }
  lines.push(`BROKER_USER=${broker.user}`, `BROKER_PASSWORD=${broker.password}`);
  return `${lines.join('\n')}\n`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args === undefined) {
    console.error(USAGE);
    process.exit(2);
  }
  ensureInstalled();
  const broker = await (args.kind === 'rabbitmq'
    ? startRabbitMQ({ tls: args.tls, exchanges: args.exchanges })
    : startActiveMQ({ tls: args.tls }));
  const { kind, host, ports, user, password, dataDir, logFile, name, startupMs } = broker;
  console.log(JSON.stringify({ kind, name, host, ports, user, password, dataDir, logFile, tls: broker.tls, startupMs }, null, 2));
  if (args.envFile !== undefined) {
    // Written whole then renamed: whoever waits for the file never reads half of it.
    const tmp = `${args.envFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, envLines({ ...broker, kind }));
    fs.renameSync(tmp, args.envFile);
  }
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.error(`stopping ${name}...`);
    if (args.envFile !== undefined) fs.rmSync(args.envFile, { force: true });
    await broker.stop();
    clearInterval(keepAlive);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
