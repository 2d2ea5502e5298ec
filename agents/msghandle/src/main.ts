#!/usr/bin/env node
import { run } from './cli';

void run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Nothing of a run must keep the process alive once it is over (a module's timer, a socket).
  setTimeout(() => process.exit(code), 1000).unref();
});
