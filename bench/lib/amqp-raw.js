// A minimal raw rhea client, run in its own process by bench/amqp.js (under bench/lib/measure.js):
//
//   node -r bench/lib/measure.js bench/lib/amqp-raw.js '{"case": "out", "port": P, "count": N, ...}'
//
// out:        N durable messages (one data section of 1 KiB) from memory, unsettled, at most `window` unsettled,
//             done when every one is accepted.
// out-spool:  the same, reading the spool at `dir` (bench/lib/spool-raw.js: lock, get, JSON.parse, remove once
//             accepted).
// in:         a receiver with manual credit: `prefetch` at first, one more per accepted delivery; accepts on arrival.
// in-spool:   the same, each message added to the spool at `dir` with fsync before it is accepted.

const rhea = require('rhea');
const { consumeSpool, spoolWriter } = require('./spool-raw');

const o = JSON.parse(process.argv[2]);

function connect() {
  const container = rhea.create_container({ id: `bench-raw-${process.pid}` });
  return new Promise((resolve, reject) => {
    const connection = container.connect({
      host: o.host ?? '127.0.0.1',
      port: o.port,
      username: 'guest',
      password: 'guest',
      reconnect: false,
    });
    connection.once('connection_open', () => resolve(connection));
    connection.once('connection_error', (ctx) => reject(ctx.connection.error ?? new Error('connection error')));
    connection.once('disconnected', (ctx) => reject(ctx.error ?? new Error('disconnected')));
  });
}

function close(connection) {
  return new Promise((resolve) => {
    connection.once('connection_close', () => resolve());
    connection.once('disconnected', () => resolve());
    connection.close();
  });
}

/** A sender whose send(body) resolves once the message is accepted; at most `window` unsettled. */
function sender(connection) {
  const s = connection.open_sender({ target: { address: o.destination, durable: 2 } });
  const waiting = new Map();
  const queue = [];
  const pump = () => {
    while (queue.length > 0 && s.sendable()) {
      const q = queue.shift();
      waiting.set(s.send({ durable: true, body: rhea.message.data_section(q.body) }), q);
    }
  };
  s.on('sendable', pump);
  s.on('accepted', (ctx) => {
    const q = waiting.get(ctx.delivery);
    waiting.delete(ctx.delivery);
    q?.resolve();
  });
  const fail = (why) => (ctx) => {
    console.error(`${why}: ${JSON.stringify(ctx.delivery?.remote_state ?? ctx.sender?.error)}`);
    process.exit(1);
  };
  s.on('rejected', fail('rejected'));
  s.on('released', fail('released'));
  s.on('sender_error', fail('sender error'));
  return (body) =>
    new Promise((resolve) => {
      queue.push({ body, resolve });
      pump();
    });
}

async function outFromMemory(connection) {
  const send = sender(connection);
  const body = Buffer.alloc(o.bodySize, 'x');
  let sent = 0;
  let accepted = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (sent - accepted < o.window && sent < o.count) {
        sent++;
        send(body).then(() => (++accepted === o.count ? resolve() : pump()));
      }
    };
    pump();
  });
  return accepted;
}

function receive(connection, sink) {
  return new Promise((resolve, reject) => {
    const receiver = connection.open_receiver({
      source: { address: o.destination, durable: 2 },
      credit_window: 0,
      autoaccept: false,
    });
    let received = 0;
    receiver.add_credit(o.prefetch);
    receiver.on('message', (ctx) => {
      const done = () => {
        ctx.delivery.accept();
        if (++received === o.count) resolve(received);
        else receiver.add_credit(1);
      };
      if (sink === undefined) return done();
      const m = ctx.message;
      const body = Buffer.isBuffer(m.body?.content) ? m.body.content : Buffer.from(String(m.body ?? ''));
      const header = { destination: o.destination };
      if (m.message_id !== undefined) header['message-id'] = String(m.message_id);
      for (const [k, v] of Object.entries(m.application_properties ?? {})) header[k] = String(v);
      sink(header, body).then(done, reject);
    });
    receiver.on('receiver_error', (ctx) => reject(ctx.receiver.error));
  });
}

async function main() {
  const connection = await connect();
  let n;
  if (o.case === 'out') n = await outFromMemory(connection);
  else if (o.case === 'out-spool') {
    const send = sender(connection);
    n = await consumeSpool(o.dir, o.window, (_h, body) => send(body));
  } else if (o.case === 'in') n = await receive(connection);
  else if (o.case === 'in-spool') n = await receive(connection, spoolWriter(o.dir));
  else throw new Error(`unknown case ${o.case}`);
  await close(connection);
  if (n !== o.count) throw new Error(`${o.case}: ${n} messages of ${o.count}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
