#!/usr/bin/env node
import { runGateway } from './gateway';

void runGateway(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
