#!/usr/bin/env node
// Builds @msgbricks/dirq's native binding (packages/dirq/native/dirq.c -> packages/dirq/build/dirq.node) with the
// C compiler and the Node-API headers of the Node running this script; run by `npm ci` (prepare), `npm run build`
// and `npm test`. Node-API needs no linking against Node, so one compiler call does it (no node-gyp, nothing
// downloaded). Without a compiler or headers the queues use their portable JavaScript path: this script then says
// so and exits 0, so that `npm ci` still works, and the test "dirq native - the binding is built" fails with the
// same reason, so CI cannot pass on the slow path unnoticed.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const src = path.join(root, 'packages', 'dirq', 'native', 'dirq.c');
const outDir = path.join(root, 'packages', 'dirq', 'build');
const out = path.join(outDir, 'dirq.node');
const reasonFile = path.join(outDir, 'build-failure.txt');

function headerDirs() {
  const dirs = [path.join(path.dirname(process.execPath), '..', 'include', 'node')];
  if (process.env.npm_config_nodedir) dirs.push(path.join(process.env.npm_config_nodedir, 'include', 'node'));
  return dirs.filter((d) => fs.existsSync(path.join(d, 'node_api.h')));
}

function main() {
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs) return;
  fs.mkdirSync(outDir, { recursive: true });
  fs.rmSync(reasonFile, { force: true });
  let reason;
  if (process.platform !== 'linux') reason = `${process.platform} is not Linux (the binding uses renameat2 and syncfs)`;
  const inc = headerDirs();
  if (reason === undefined && inc.length === 0)
    reason = `no Node-API headers (node_api.h) under ${path.join(path.dirname(process.execPath), '..', 'include', 'node')}`;
  if (reason === undefined) {
    const cc = process.env.CC || 'cc';
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      execFileSync(
        cc,
        ['-O2', '-std=gnu11', '-shared', '-fPIC', '-Wall', '-Wextra', '-Wno-unused-parameter', `-I${inc[0]}`, '-o', tmp, src],
        { stdio: ['ignore', 'inherit', 'pipe'] },
      );
      // RACE: two builds at once (npm test in two trees sharing nothing but this file) each rename a whole file.
      fs.renameSync(tmp, out);
      return;
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      const stderr = err.stderr ? String(err.stderr).trim() : '';
      reason = `${cc} failed: ${err.code === 'ENOENT' ? 'no C compiler' : stderr || err.message}`;
    }
  }
  fs.writeFileSync(reasonFile, `${reason}\n`);
  console.error(`msgbricks: dirq's native binding was not built (${reason}); the queues use their JavaScript path.`);
}

main();
