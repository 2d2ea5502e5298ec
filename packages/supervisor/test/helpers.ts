import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, type NodeStatus, Supervision } from '@msgbricks/supervisor';

export const NODE = process.execPath;

/** Writes `files` (name -> text) into `dir`; returns the path of the first. */
export function writeFiles(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o755 });
  return path.join(dir, Object.keys(files)[0] as string);
}

/**
 * A child script that appends `start NAME PID` to `journal` when it starts and `stop NAME` when it gets SIGTERM,
 * then runs until stopped. With `ready` it first waits `ready` ms, appends `ready NAME` and writes a line to fd 3.
 */
export function journalChild(dir: string, journal: string): string {
  return writeFiles(dir, {
    'child.js': `
const fs = require('node:fs');
const [name, ready] = process.argv.slice(2);
const note = (s) => fs.appendFileSync(${JSON.stringify(journal)}, s + '\\n');
process.on('SIGTERM', () => { note('stop ' + name); process.exit(0); });
note('start ' + name + ' ' + process.pid);
setInterval(() => {}, 1000);
if (ready !== undefined) setTimeout(() => { note('ready ' + name); fs.writeSync(3, 'ready\\n'); }, Number(ready));
`,
  });
}

export function readLines(file: string): string[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
  } catch {
    return [];
  }
}

/** Polls `cond` every 10 ms until true; throws with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Recorded {
  readonly events: [number, string, string][];
  readonly messages: string[];
}

/** A Supervision of the configuration `text` (written to dir/supervise.conf), with its events and log recorded. */
export function tree(dir: string, text: string): { sup: Supervision; rec: Recorded } {
  const file = writeFiles(dir, { 'supervise.conf': text });
  const rec: Recorded = { events: [], messages: [] };
  const sup = new Supervision(loadConfig(file), { log: (level, m) => rec.messages.push(`${level}: ${m}`) });
  for (const ev of ['restart', 'exit', 'failed', 'ready', 'held', 'gave-up'] as const) {
    sup.on(ev, (...args: unknown[]) => rec.events.push([Date.now(), ev, String(args[0] ?? '')]));
  }
  return { sup, rec };
}

export function find(s: NodeStatus, p: string): NodeStatus {
  if (s.path === p) return s;
  for (const c of s.children ?? []) {
    const f = find(c, p);
    if (f.path === p) return f;
  }
  return s;
}

/** SIGKILLs the entry's process and waits for a new one running; resolves with the milliseconds that took. */
export async function killAndWait(sup: Supervision, entry: string): Promise<number> {
  const pid = find(sup.status(), entry).pid as number;
  const killed = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor(`${entry} restarted`, () => {
    const s = find(sup.status(), entry);
    return s.state === 'running' && s.pid !== pid;
  });
  return Date.now() - killed;
}
