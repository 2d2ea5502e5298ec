// Benchmark: amqpclt against minimal raw rhea clients, in both directions, on a tmpfs spool, against one private
// RabbitMQ (AMQP 1.0 plugin) started for the run (@msgbricks/test-support, docs/brokers.md): CPU per message, throughput and
// peak RSS of each process, and the agent's peak RSS against the backlog. Cases and method: bench/lib/harness.js,
// docs/benchmarks.md.
//
//   npm run bench:amqp -- [--count N] [--window W] [--prefetch P] [--reps R] [--dir PATH] [--quick]
//                         [--only CASE,...] [--backlog N,...] [--big] [--no-backlog] [--port PORT] [--profile DIR]
//
// --big adds a backlog of 1,000,000 messages (a few minutes); --port uses a broker already running (its AMQP port);
// --profile DIR writes a --cpu-prof profile of every amqpclt run into DIR.

const path = require('node:path');
const rhea = require('rhea');
const { startRabbitMQ } = require('../packages/test-support');
const { BODY_SIZE, run } = require('./lib/harness');

const HOST = '127.0.0.1';

/** Puts n durable messages in the queue `address` (declared by the attach), all accepted. */
function fillBroker(port, address, n) {
  const container = rhea.create_container({ id: `bench-fill-${process.pid}` });
  return new Promise((resolve, reject) => {
    const connection = container.connect({ host: HOST, port, username: 'guest', password: 'guest', reconnect: false });
    const sender = connection.open_sender({ target: { address, durable: 2 } });
    const body = rhea.message.data_section(Buffer.alloc(BODY_SIZE, 'x'));
    let sent = 0;
    let accepted = 0;
    const pump = () => {
      while (sent < n && sent - accepted < 1000 && sender.sendable()) {
        sender.send({ durable: true, body });
        sent++;
      }
    };
    sender.on('sendable', pump);
    sender.on('accepted', () => {
      if (++accepted < n) return pump();
      connection.once('connection_close', () => resolve());
      connection.close();
    });
    sender.on('rejected', () => reject(new Error('fill: rejected')));
    connection.once('connection_error', (ctx) => reject(ctx.connection.error));
  });
}

run(
  {
    name: 'amqp',
    client: 'rhea',
    command: 'amqpclt',
    clientLabel: `amqpclt vs raw rhea ${require('rhea/package.json').version}`,
    raw: path.join(__dirname, 'lib', 'amqp-raw.js'),
    agent: path.join(__dirname, '..', 'agents', 'amqpclt', 'dist', 'main.js'),
    startBroker: async () => {
      const b = await startRabbitMQ();
      return { port: b.ports.amqp, stop: () => b.stop() };
    },
    fillBroker,
    outDestination: '/topic/bench',
    inDestination: (i) => `/queue/bench-in-${process.pid}-${i}`,
    uri: (port) => `amqp://${HOST}:${port}`,
  },
  process.argv.slice(2),
).catch((err) => {
  console.error(err);
  process.exit(1);
});
