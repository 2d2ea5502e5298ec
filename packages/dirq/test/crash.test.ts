import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { removeDir, tempDir } from '@msgbricks/test-support';

// A producer is killed with SIGKILL at random moments; no partial element may ever be visible.
// The child runs the built library (npm test builds it before jest runs).
const DIST = resolve(__dirname, '../dist/index.js');

const PRODUCER = `
const crypto = require('node:crypto');
const { QueueSimple, Queue } = require(process.argv[1]);
const [kind, path, fsync] = process.argv.slice(2);
const q = kind === 'simple' ? new QueueSimple(path, { fsync: fsync === '1' }) : new Queue(path, { schema: { body: 'binary', note: 'string?' }, fsync: fsync === '1' });
(async () => {
  process.stdout.write('ready\\n');
  for (let i = 0; ; i++) {
    // Sizes up to 1 MiB make the write window wide enough for kills to land inside it.
    const payload = crypto.randomBytes(1 + Math.floor(Math.random() * (1 << 20)));
    const elt = Buffer.concat([crypto.createHash('md5').update(payload).digest(), payload]);
    if (kind === 'simple') await q.add(elt);
    else await q.add({ body: elt, note: 'n'.repeat(i % 100) });
  }
})();
`;

function verify(payload: Buffer): boolean {
  return payload.length > 16 && createHash('md5').update(payload.subarray(16)).digest().equals(payload.subarray(0, 16));
}

function visibleElements(root: string, kind: 'simple' | 'normal'): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(root).filter((x) => /^[0-9a-f]{8}$/.test(x))) {
    for (const e of fs.readdirSync(join(root, d)).filter((x) => /^[0-9a-f]{14}$/.test(x))) {
      out.push(kind === 'simple' ? join(root, d, e) : join(root, d, e, 'body'));
    }
  }
  return out;
}

async function startAndKill(script: string, args: string[], delayMs: number): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, ['-e', script, DIST, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolveReady, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`producer exited early with ${code}`)));
    child.stdout?.once('data', () => resolveReady());
  });
  await new Promise((r) => setTimeout(r, delayMs));
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe.each([
  ['simple', '0'],
  ['simple', '1'],
  ['normal', '0'],
  ['normal', '1'],
] as const)('dirq crash (%s, fsync %s)', (kind, fsync) => {
  test(`dirq crash - SIGKILL of a ${kind} producer (fsync ${fsync}) never leaves a partial element visible`, async () => {
    expect(fs.existsSync(DIST)).toBe(true);
    const tmp = tempDir('dirq-');
    const path = join(tmp, 'q');
    try {
      let checked = 0;
      for (let round = 0; round < 12; round++) {
        await startAndKill(PRODUCER, [kind, path, fsync], 20 + Math.floor(Math.random() * 200));
        for (const file of visibleElements(path, kind)) {
          expect([file, verify(fs.readFileSync(file))]).toEqual([file, true]);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
    } finally {
      removeDir(tmp);
    }
  }, 120_000);
});
