#!/usr/bin/env node
// Runs jest with the given arguments, then ends the output with one plain line,
// "tests: N passed, N failed, N skipped", that any CI can read. A suite that fails
// to load counts as failed: it must never vanish from the totals.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'msgbricks-jest-')), 'results.json');
const jest = require.resolve('jest/bin/jest');
const r = spawnSync(process.execPath, [jest, '--json', `--outputFile=${out}`, ...process.argv.slice(2)], { stdio: 'inherit' });
let status = r.status ?? 1;
try {
  const res = JSON.parse(fs.readFileSync(out, 'utf8'));
  const failed = res.numFailedTests + res.numRuntimeErrorTestSuites;
  const skipped = res.numPendingTests + res.numTodoTests;
  if (res.numTotalTests === 0) status = 1;
  process.stdout.write(`\ntests: ${res.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
} catch {
  process.stdout.write('\ntests: 0 passed, 1 failed\n');
  status = 1;
} finally {
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
}
process.exit(status);
