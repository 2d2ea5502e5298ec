#!/usr/bin/env node
// Drains a simple directory queue: watch for elements, lock, handle, remove. Run several at once if you like.

const path = require('node:path');
const { QueueSimple } = require(path.resolve(__dirname, '../../packages/dirq/dist'));

const spool = process.argv[2];
if (!spool) {
  console.error('usage: handler.js SPOOL_DIRECTORY');
  process.exit(2);
}

async function handle(name, data) {
  // Replace with real work. Throwing leaves the element in the spool for a later attempt.
  console.log(`${name}: ${data.length} bytes: ${data.toString('utf8').slice(0, 60)}`);
}

async function main() {
  const q = new QueueSimple(spool);
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => stop.abort());
  // Stale locks of dead handlers and half-written temporaries are cleaned up every minute.
  const purge = setInterval(() => q.purge().catch((err) => console.error(`purge: ${err.message}`)), 60_000);
  for await (const name of q.watch({ fromStart: true, signal: stop.signal })) {
    if (!(await q.lock(name))) continue; // another handler has it
    try {
      await handle(name, await q.get(name));
      await q.remove(name);
    } catch (err) {
      console.error(`${name}: ${err.message} (left in the spool)`);
      await q.unlock(name, true);
    }
  }
  clearInterval(purge);
}

main().catch((err) => {
  console.error(`handler: ${err.message}`);
  process.exit(1);
});
