#!/usr/bin/env node
// The site's handler: drains the incoming spool (a python-messaging DQS, as stompclt writes it) with @msgbricks/dirq:
// watch, lock, handle, remove. Handling here appends the message's `seq` header to OUTPUT; an element is removed
// only once handled, so a crash in between handles it twice, never zero times (at least once).
// Usage: handler.js SPOOL OUTPUT

const fs = require('node:fs');
const path = require('node:path');
const { QueueSimple } = require(path.resolve(__dirname, '../../packages/dirq/dist'));

const [spool, output] = process.argv.slice(2);
if (output === undefined) {
  console.error('usage: handler.js SPOOL OUTPUT');
  process.exit(2);
}

async function main() {
  const q = new QueueSimple(spool);
  const out = fs.openSync(output, 'a');
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => stop.abort());
  // Locks left by a handler that was killed are taken back after a minute.
  const purge = setInterval(() => q.purge({ maxlock: 60 }).catch((err) => console.error(`purge: ${err.message}`)), 60_000);
  for await (const name of q.watch({ fromStart: true, signal: stop.signal })) {
    if (!(await q.lock(name))) continue;
    try {
      const message = JSON.parse((await q.get(name)).toString('utf8'));
      fs.writeSync(out, `${message.header?.seq ?? '?'}\n`);
      await q.remove(name);
    } catch (err) {
      console.error(`${name}: ${err.message} (left in the spool)`);
      await q.unlock(name, true);
    }
  }
  clearInterval(purge);
  fs.closeSync(out);
}

main().catch((err) => {
  console.error(`handler: ${err.message}`);
  process.exit(1);
});
