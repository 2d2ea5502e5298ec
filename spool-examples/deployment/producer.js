#!/usr/bin/env node
// The site's producer: spools COUNT messages (RATE a second) into the outgoing spool, each with its sequence number
// in a `seq` header and `persistent: true` so that RabbitMQ keeps them across a restart. Its progress is kept in
// SPOOL.producer (written after each message): restarted, it goes on from there (at most one message twice).
// Exits 0 when done (supervise.conf: no_restart_exit = 0).
// Usage: producer.js SPOOL DESTINATION COUNT RATE

const fs = require('node:fs');
const path = require('node:path');
const { DQS, Message } = require(path.resolve(__dirname, '../../packages/message/dist'));

const [spool, destination, count, rate] = process.argv.slice(2);
if (rate === undefined) {
  console.error('usage: producer.js SPOOL DESTINATION COUNT RATE');
  process.exit(2);
}
const state = `${spool}.producer`;

async function main() {
  const q = new DQS(spool);
  let next = 0;
  try {
    next = Number(fs.readFileSync(state, 'utf8'));
  } catch {
    // First run: nothing produced yet.
  }
  const batch = Math.max(1, Math.round(Number(rate) / 10));
  while (next < Number(count)) {
    const t0 = Date.now();
    for (let i = 0; i < batch && next < Number(count); i++, next++) {
      await q.addMessage(
        new Message({ header: { destination, persistent: 'true', seq: String(next) }, body: `message ${next}` }),
      );
      fs.writeFileSync(state, String(next + 1));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t0))));
  }
  console.log(`producer: ${count} messages spooled`);
}

main().catch((err) => {
  console.error(`producer: ${err.message}`);
  process.exit(1);
});
