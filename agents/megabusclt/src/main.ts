#!/usr/bin/env node
import { run } from './cli';

void run(process.argv.slice(2)).then((code) => {
  // exitCode, not exit(): stdout may still be draining into a pipe.
  process.exitCode = code;
});
