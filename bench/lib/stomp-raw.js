// A minimal raw stompit client, run in its own process by bench/stomp.js (under bench/lib/measure.js):
//
//   node -r bench/lib/measure.js bench/lib/stomp-raw.js '{"case": "out", "port": P, "count": N, ...}'
//
// out:        N SEND frames of a 1 KiB body from memory, each with a receipt, at most `window` unreceipted.
// out-spool:  the same, reading the spool at `dir` (bench/lib/spool-raw.js: lock, get, JSON.parse, remove on receipt).
// in:         SUBSCRIBE with ack client-individual and prefetch-count `prefetch`, an ACK per MESSAGE, nothing kept.
// in-spool:   the same, each message added to the spool at `dir` with fsync before its ACK.

const { consumeSpool, spoolWriter } = require('./spool-raw');
const { connect: stompitConnect, headersOf, subscribe } = require('./stompit');

const o = JSON.parse(process.argv[2]);

const connect = () => stompitConnect(o.port, o.host);

/** A SEND with a receipt; resolves on the RECEIPT. */
function send(client, headers, body) {
  return new Promise((resolve) => {
    client.send({ ...headers, 'content-length': body.length }, { onReceipt: resolve }).end(body);
  });
}

async function outFromMemory(client) {
  const body = Buffer.alloc(o.bodySize, 'x');
  await new Promise((resolve) => {
    let sent = 0;
    let receipted = 0;
    const onReceipt = () => {
      if (++receipted === o.count) resolve();
      else pump();
    };
    const pump = () => {
      while (sent - receipted < o.window && sent < o.count) {
        sent++;
        client.send({ destination: o.destination, 'content-length': body.length }, { onReceipt }).end(body);
      }
    };
    pump();
  });
  return o.count;
}

function consume(client, sink) {
  return new Promise((resolve, reject) => {
    let acked = 0;
    subscribe(
      client,
      o.destination,
      o.prefetch,
      (msg, body) => {
        const done = () => {
          client.ack(msg);
          if (++acked === o.count) resolve(acked);
        };
        if (sink === undefined) return done();
        sink(headersOf(msg), body).then(done, reject);
      },
      reject,
    );
  });
}

async function main() {
  const client = await connect();
  let n;
  if (o.case === 'out') n = await outFromMemory(client);
  else if (o.case === 'out-spool') n = await consumeSpool(o.dir, o.window, (h, b) => send(client, h, b));
  else if (o.case === 'in') n = await consume(client);
  else if (o.case === 'in-spool') n = await consume(client, spoolWriter(o.dir));
  else throw new Error(`unknown case ${o.case}`);
  await new Promise((resolve, reject) => client.disconnect((err) => (err ? reject(err) : resolve())));
  if (n !== o.count) throw new Error(`${o.case}: ${n} messages of ${o.count}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
