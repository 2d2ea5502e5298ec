// The workspaces of the root package.json and the commands (`bin`) they declare: for scripts/install-host.js and the
// tests of scripts/test.

const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** @returns {{dir: string, name: string, bin: Record<string, string>}[]} every workspace, `bin` normalised to a map */
function workspaces() {
  const { workspaces: dirs } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return dirs.map((dir) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, dir, 'package.json'), 'utf8'));
    // npm's rule: a string `bin` is one command named after the package, scope removed.
    const bin = typeof pkg.bin === 'string' ? { [pkg.name.replace(/^@[^/]+\//, '')]: pkg.bin } : (pkg.bin ?? {});
    return { dir, name: pkg.name, bin };
  });
}

/** @returns {{command: string, dir: string, target: string}[]} every command of every workspace */
function commands() {
  return workspaces().flatMap((w) => Object.entries(w.bin).map(([command, target]) => ({ command, dir: w.dir, target })));
}

module.exports = { root, workspaces, commands };
