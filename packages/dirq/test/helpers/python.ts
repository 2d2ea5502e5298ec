import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir as makeTempDir, PYTHON, removeDir } from '@msgbricks/test-support';

export { layout as tree, PYTHON, removeDir } from '@msgbricks/test-support';

/** The built library, for child Node processes (jest maps @msgbricks/dirq to the sources; children cannot). */
export const DIST = path.resolve(__dirname, '..', '..', 'dist');
const SRC = path.resolve(__dirname, '..', '..', 'src');

/** Python code run before every snippet: `args` holds the JSON parameters; set `result` to answer. */
const PRELUDE = `
import sys, os, json, base64, errno, time, hashlib, warnings
from dirq.QueueSimple import QueueSimple
from dirq.queue import Queue
from dirq.QueueSet import QueueSet
def b64(b): return base64.b64encode(b).decode('ascii')
def unb64(s): return base64.b64decode(s)
def sha(b): return hashlib.sha256(b).hexdigest()
def errname(e): return errno.errorcode.get(getattr(e, 'errno', None) or 0, type(e).__name__)
`;

/** Fails (never skips) when python3-dirq is not importable, and when the built library is missing or stale. */
export function requirePythonDirq(): void {
  const r = spawnSync(PYTHON, ['-c', 'import dirq, dirq.QueueSimple, dirq.queue, dirq.QueueSet'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-dirq missing: apt-get install -y python3-dirq (${r.error?.message ?? r.stderr})`);
}

/** Child Node processes run dist/: it must exist and have been built (tsc -b) after the last source change. */
export function requireBuiltLibrary(): void {
  const index = path.join(DIST, 'index.js');
  if (!fs.existsSync(index)) throw new Error(`${index} missing: run npx tsc -b first`);
  // tsc -b leaves an unchanged output file alone, so compare with its build record, which every build rewrites.
  const info = path.resolve(SRC, '..', 'tsconfig.tsbuildinfo');
  const built = fs.existsSync(info) ? fs.statSync(info).mtimeMs : fs.statSync(index).mtimeMs;
  for (const f of fs.readdirSync(SRC)) {
    if (f.endsWith('.ts') && fs.statSync(path.join(SRC, f)).mtimeMs > built) {
      throw new Error(`src/${f} changed after the last build of ${DIST}: run npx tsc -b first`);
    }
  }
}

function wrap(code: string): string {
  return `${PRELUDE}\nargs = json.loads(sys.stdin.read() or 'null')\nresult = None\n${code}\nsys.stdout.write(json.dumps(result))\n`;
}

/** Runs a Python snippet synchronously; throws with Python's stderr on failure. */
export function py<T = unknown>(code: string, args: unknown = null): T {
  const r = spawnSync(PYTHON, ['-c', wrap(code)], { input: JSON.stringify(args), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed (status ${r.status}): ${r.error?.message ?? ''}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface ProcResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcessWithoutNullStreams, input: string): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Runs a Python snippet as a separate process, resolving with its exit status and output (no throw). */
export function pyProcess(code: string, args: unknown = null): Promise<ProcResult> {
  return collect(spawn(PYTHON, ['-c', wrap(code)]), JSON.stringify(args));
}

/** Runs a Node script (CommonJS source) as a separate process; `require(DIST)` is the built library. */
export function nodeProcess(dir: string, source: string, args: unknown = null): Promise<ProcResult> {
  const file = path.join(dir, `worker-${process.hrtime.bigint()}.js`);
  fs.writeFileSync(file, `'use strict';\nconst DIST = ${JSON.stringify(DIST)};\n${source}\n`);
  return collect(spawn(process.execPath, [file]), JSON.stringify(args));
}

/** Throws unless the child exited 0. */
export function ok(r: ProcResult, what: string): ProcResult {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr}`);
  return r;
}

/**
 * One long-lived Python process keeping its globals between calls, for
 * ping-pong tests (alternating adds) where a process per step would be slow.
 */
export class PyServer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private stderr = '';
  private waiting: ((line: string) => void)[] = [];

  constructor() {
    const loop = `${PRELUDE}
g = dict(globals())
for line in sys.stdin:
    req = json.loads(line)
    g['args'] = req['args']
    g['result'] = None
    try:
        exec(req['code'], g)
        out = {'ok': True, 'result': g['result']}
    except Exception as e:
        out = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e), 'errno': errname(e)}
    sys.stdout.write(json.dumps(out) + '\\n')
    sys.stdout.flush()
`;
    this.child = spawn(PYTHON, ['-c', loop]);
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.buffer += d;
      for (let i = this.buffer.indexOf('\n'); i >= 0; i = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
  }

  /** Runs `code` in the server; rejects with Python's exception (errno name attached) if it raised. */
  call<T = unknown>(code: string, args: unknown = null): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push((line) => {
        const out = JSON.parse(line) as { ok: boolean; result?: T; error?: string; errno?: string };
        if (out.ok) resolve(out.result as T);
        else reject(Object.assign(new Error(`python: ${out.error}`), { pyErrno: out.errno }));
      });
      if (this.child.exitCode !== null) reject(new Error(`python server exited: ${this.stderr}`));
      this.child.stdin.write(`${JSON.stringify({ code, args })}\n`);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.on('close', () => resolve());
      this.child.stdin.end();
    });
  }
}

/** A fresh temporary directory on os.tmpdir()'s file system. */
export const tempDir = (tag = 'dirq-interop-'): string => makeTempDir(tag);

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export const NAME_FORMAT = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The per-test temporary directory every interop suite uses: registers the hooks (python-dirq must be
 * there, and the built library too when `needsBuild`) and returns a getter for the current directory.
 */
export function interopFixture(options: { needsBuild?: boolean } = {}): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    requirePythonDirq();
    if (options.needsBuild) requireBuiltLibrary();
  });
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => {
    removeDir(dir);
    dir = undefined;
  });
  return () => {
    if (dir === undefined) throw new Error('no temp dir');
    return dir;
  };
}
