#!/usr/bin/env node
// Committed, not built: npm links a workspace's commands at install time, before `prepare` has built dist/, and
// skips a link whose file does not exist yet (docs/decisions.md, "Commands on the PATH").
const main = require('node:path').join(__dirname, '..', 'dist', 'main.js');
if (!require('node:fs').existsSync(main)) {
  process.stderr.write(`megabusclt: ${main} is not built: run \`npm run build\` in the msgbricks tree\n`);
  process.exit(1);
}
require(main);
