#!/usr/bin/env node
// A handler on @msgbricks/handler: the runner locks, reads, retries, dead-letters, purges and stops; this file only
// says what to do with one message. Run several at once (and python-dirq consumers beside them) if you like.
//
//   node handler.js SPOOL [DEAD_LETTER_SPOOL]      (--drain as a third argument: stop once the spool is empty)

const { consume } = require('@msgbricks/handler');

const [spool, dead, drain] = process.argv.slice(2);
if (!spool) {
  console.error('usage: handler.js SPOOL [DEAD_LETTER_SPOOL] [--drain]');
  process.exit(2);
}

async function handle(message, context) {
  // Replace with real work. Throwing leaves the message in the spool for a later attempt (after a backoff); after
  // five failed attempts it goes to the dead-letter spool, with the reason and the last error in its header.
  const body = message.text ? message.body : message.body.toString('utf8');
  console.log(`${context.name} (attempt ${context.attempt}): ${JSON.stringify(message.header)} ${body.slice(0, 60)}`);
  if (message.getHeader('fail') === 'yes') throw new Error('asked to fail');
}

const consumer = consume(`path=${spool}`, handle, {
  concurrency: 4,
  ...(dead ? { maxAttempts: 5, deadLetter: `path=${dead}` } : {}),
  backoff: { initial: 100 },
  drain: drain === '--drain',
});
consumer.on('dead-lettered', (e) => console.error(`${e.name}: dead-lettered: ${e.error}`));
consumer.done.then(
  (c) => console.error(`handled ${c.handled}, failed attempts ${c.failed}, dead-lettered ${c.deadLettered}`),
  (err) => {
    console.error(`handler: ${err.message}`);
    process.exitCode = 1;
  },
);
