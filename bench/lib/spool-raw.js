// The spool side of the raw clients (bench/lib/stomp-raw.js, bench/lib/amqp-raw.js): what a minimal client of a
// python-dirq spool does, with @msgbricks/dirq's QueueSimple and nothing of the agent.
//
// consume: the documented loop, lock + get + JSON.parse (+ base64 decode when the element says so) per element, the
//   element removed once the broker has confirmed its message; at most `window` confirmations awaited.
// add: each received message serialized (python-messaging's JSON, @msgbricks/message) and added with fsync (the
//   element is durable when add() resolves) before it is acknowledged.

const { QueueSimple } = require('../../packages/dirq/dist');
const { Message } = require('../../packages/message/dist');

/** Reads every element of the spool at `dir` and hands it to `send(header, body)`, which resolves once confirmed. */
async function consumeSpool(dir, window, send) {
  const q = new QueueSimple(dir);
  let inflight = 0;
  let sent = 0;
  let failure;
  let wake;
  const settled = () => {
    inflight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  for await (const name of q) {
    if (!(await q.lock(name))) continue;
    const data = JSON.parse((await q.get(name)).toString('utf8'));
    const body =
      data.encoding === undefined
        ? Buffer.from(data.body, 'utf8')
        : data.encoding === 'base64'
          ? Buffer.from(data.body, 'base64')
          : undefined;
    if (body === undefined) throw new Error(`raw consumer: unsupported encoding ${data.encoding}`);
    while (inflight >= window) await new Promise((r) => (wake = r));
    if (failure) throw failure;
    inflight++;
    sent++;
    send(data.header, body).then(
      () => q.remove(name).then(settled),
      (err) => {
        failure = err;
        settled();
      },
    );
  }
  while (inflight > 0) await new Promise((r) => (wake = r));
  if (failure) throw failure;
  return sent;
}

/** A durable spool writer: add(header, body) resolves once the element is on disk (fsync). */
function spoolWriter(dir) {
  const q = new QueueSimple(dir, { fsync: true });
  return (header, body) => q.add(new Message({ header, body }).serialize());
}

module.exports = { consumeSpool, spoolWriter };
