import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { PYTHON } from '@msgbricks/test-support';

/** The repository's node_modules: child processes find the built packages by name there (`require('@msgbricks/handler')`). */
export const NODE_MODULES = resolve(__dirname, '..', '..', '..', 'node_modules');

/** Child processes run the built package: it must exist. */
export function requireBuilt(): void {
  const index = resolve(__dirname, '..', 'dist', 'index.js');
  if (!fs.existsSync(index)) throw new Error(`${index} missing: run npx tsc -b first`);
}

/** Fills a DQS at `path` with `n` messages whose header `id` is 0..n-1. */
export async function fillSpool(path: string, n: number): Promise<DQS> {
  const q = new DQS(path);
  const items: Buffer[] = [];
  for (let i = 0; i < n; i++) items.push(new Message({ header: { id: String(i) }, body: `message ${i}` }).serialize());
  for (let i = 0; i < n; i += 1000) await q.addMany(items.slice(i, i + 1000));
  return q;
}

/** Runs Python code synchronously (python3-dirq importable); resolves its stdout; throws with its stderr. */
export function py(code: string, ...args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Starts Python code as a process. */
export function pyProcess(code: string, ...args: string[]): ChildProcess {
  return spawn(PYTHON, ['-c', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Starts a Node script (its text) as a process that finds the built packages by name. */
export function nodeScript(dir: string, name: string, text: string, args: string[] = []): ChildProcess {
  const file = join(dir, name);
  fs.writeFileSync(file, text);
  return spawn(process.execPath, [file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_PATH: NODE_MODULES },
  });
}

/** Resolves with the exit code (or signal) and what the process wrote on stderr. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Waits until `check` is true, polling (tests wait for what they expect, never for a fixed time). */
export async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Lines of a log file with the given prefix ("done 12" -> "12"); none if it does not exist. */
export function logged(file: string, prefix: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${prefix} `))
    .map((l) => l.slice(prefix.length + 1));
}
