// Benchmark: stompclt against minimal raw stompit clients, in both directions, on a tmpfs spool, against one private
// RabbitMQ started for the run (@msgbricks/test-support, docs/brokers.md): CPU per message, throughput and peak RSS of each
// process, and the agent's peak RSS against the backlog. Cases and method: bench/lib/harness.js, docs/benchmarks.md.
//
//   npm run bench:stomp -- [--count N] [--window W] [--prefetch P] [--reps R] [--dir PATH] [--quick]
//                          [--only CASE,...] [--backlog N,...] [--big] [--no-backlog] [--port PORT] [--profile DIR]
//
// --big adds a backlog of 1,000,000 messages (a few minutes); --port uses a broker already running (its STOMP port);
// --profile DIR writes a --cpu-prof profile of every stompclt run into DIR.

const path = require('node:path');
const { startRabbitMQ } = require('../packages/test-support');
const { BODY_SIZE, run } = require('./lib/harness');
const { connect } = require('./lib/stompit');

const HOST = '127.0.0.1';

/** Declares `destination` (a SUBSCRIBE does; RabbitMQ drops what is sent to an undeclared queue) and puts n messages in it. */
async function fillBroker(port, destination, n) {
  const client = await connect(port);
  await new Promise((resolve) => {
    client.subscribe({ destination, id: 'declare', ack: 'client-individual', 'prefetch-count': 1 }, () => undefined);
    client.sendFrame('UNSUBSCRIBE', { id: 'declare' }, { onReceipt: resolve }).end();
  });
  const body = Buffer.alloc(BODY_SIZE, 'x');
  await new Promise((resolve) => {
    let sent = 0;
    let receipted = 0;
    const onReceipt = () => (++receipted === n ? resolve() : pump());
    const pump = () => {
      while (sent - receipted < 1000 && sent < n) {
        sent++;
        client.send({ destination, 'content-length': body.length }, { onReceipt }).end(body);
      }
    };
    pump();
  });
  await new Promise((resolve) => client.disconnect(resolve));
}

run(
  {
    name: 'stomp',
    client: 'stompit',
    command: 'stompclt',
    clientLabel: `stompclt vs raw stompit ${require('stompit/package.json').version}`,
    raw: path.join(__dirname, 'lib', 'stomp-raw.js'),
    agent: path.join(__dirname, '..', 'agents', 'stompclt', 'dist', 'main.js'),
    startBroker: async () => {
      const b = await startRabbitMQ();
      return { port: b.ports.stomp, stop: () => b.stop() };
    },
    fillBroker,
    outDestination: '/topic/bench',
    inDestination: (i) => `/queue/bench-in-${process.pid}-${i}`,
    uri: (port) => `tcp://${HOST}:${port}`,
  },
  process.argv.slice(2),
).catch((err) => {
  console.error(err);
  process.exit(1);
});
