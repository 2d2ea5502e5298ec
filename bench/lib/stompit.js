// A STOMP 1.2 connection with the raw stompit client, as guest without heart-beats: what the raw clients of the
// broker benchmarks (bench/stomp.js, bench/megabus.js) start from. An error after the connection ends the process:
// a benchmark has no use for a half-done run.

const net = require('node:net');
const Client = require('stompit/lib/Client');

function connect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const client = new Client(socket, {});
    client.once('error', reject);
    socket.once('connect', () =>
      client.connect({ 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest', 'heart-beat': '0,0' }),
    );
    client.once('connect', () => {
      client.removeListener('error', reject);
      client.on('error', (err) => {
        console.error(err);
        process.exit(1);
      });
      resolve(client);
    });
  });
}

/**
 * SUBSCRIBEs to `destination` with ack client-individual and prefetch-count `prefetch`; each MESSAGE is read whole
 * and handed to `onMessage(msg, body)`; `onError` gets a subscription error.
 */
function subscribe(client, destination, prefetch, onMessage, onError) {
  const headers = { destination, ack: 'client-individual', 'prefetch-count': prefetch };
  client.subscribe(headers, (err, msg) => {
    if (err) return onError(err);
    const chunks = [];
    msg.on('data', (c) => chunks.push(c));
    msg.on('end', () => onMessage(msg, Buffer.concat(chunks)));
  });
}

/** A MESSAGE's headers as strings, content-length left out (what a Message's header holds). */
function headersOf(msg) {
  const header = {};
  for (const [k, v] of Object.entries(msg.headers)) if (k !== 'content-length') header[k] = String(v);
  return header;
}

module.exports = { connect, headersOf, subscribe };
