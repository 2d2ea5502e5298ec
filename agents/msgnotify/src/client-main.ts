#!/usr/bin/env node
import { runClient } from './client';

void runClient(process.argv.slice(2)).then((code) => {
  // exitCode, not exit(): stdout may still be draining into a pipe.
  process.exitCode = code;
  // Sockets of an abandoned subscription may hold the loop.
  setTimeout(() => process.exit(code), 1000).unref();
});
