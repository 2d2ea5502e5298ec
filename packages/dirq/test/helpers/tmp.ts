import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory for one test, removed after it. */
export function tempDir(prefix = 'dirq-'): { path: string; cleanup: () => void } {
  const path = fs.mkdtempSync(join(os.tmpdir(), prefix));
  return { path, cleanup: () => fs.rmSync(path, { recursive: true, force: true }) };
}

/** Every file and directory under `root`, relative, sorted: the raw layout a test asserts on. */
export function layout(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push(`${p}/`);
        walk(p);
      } else out.push(p);
    }
  };
  walk('');
  return out.sort();
}

/** Sets a file's or directory's mtime `seconds` into the past. */
export function backdate(path: string, seconds: number): void {
  const t = Date.now() / 1000 - seconds;
  fs.utimesSync(path, t, t);
}
