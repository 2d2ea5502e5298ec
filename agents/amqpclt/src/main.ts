#!/usr/bin/env node
import { AMQPCLT, run } from '@msgbricks/transfer-cli';

void run(process.argv.slice(2), AMQPCLT).then((code) => {
  process.exitCode = code;
  // Nothing of a run must keep the process alive once it is over (a callback's timer, a socket).
  setTimeout(() => process.exit(code), 1000).unref();
});
