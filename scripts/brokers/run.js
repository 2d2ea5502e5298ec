#!/usr/bin/env node
// Starts one private broker for manual work and prints its ports as JSON; Ctrl-C or SIGTERM stops it.
// Usage: node scripts/brokers/run.js rabbitmq|activemq [--tls] (after `npm run build`: the launcher is
// @msgbricks/test-support's, built into packages/test-support/dist).

const { ensureInstalled, startActiveMQ, startRabbitMQ } = require('../../packages/test-support');

async function main() {
  const kind = process.argv[2];
  const tls = process.argv.includes('--tls');
  if (kind !== 'rabbitmq' && kind !== 'activemq') {
    console.error('usage: node scripts/brokers/run.js rabbitmq|activemq [--tls]');
    process.exit(2);
  }
  ensureInstalled();
  const broker = await (kind === 'rabbitmq' ? startRabbitMQ({ tls }) : startActiveMQ({ tls }));
  const { host, ports, user, password, dataDir, logFile, name, startupMs } = broker;
  console.log(JSON.stringify({ kind, name, host, ports, user, password, dataDir, logFile, tls: broker.tls, startupMs }, null, 2));
  const keepAlive = setInterval(() => {}, 1 << 30);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.error(`stopping ${name}...`);
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
