import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir as makeTempDir, PYTHON } from '@msgbricks/test-support';
import { Message } from '../../src/message';

export { layout, PYTHON, removeDir } from '@msgbricks/test-support';

/** A fresh temporary directory for one test. */
export const tempDir = (prefix = 'message-queue-'): string => makeTempDir(prefix);

export const COMPLIANCE = path.resolve(__dirname, '..', 'fixtures', 'compliance');

/** The python-messaging compliance files: name, md5 (the file name before the first dot) and bytes. */
export function complianceFiles(): { file: string; md5: string; bytes: Buffer }[] {
  return fs
    .readdirSync(COMPLIANCE)
    .sort()
    .map((file) => ({ file, md5: file.split('.')[0] as string, bytes: fs.readFileSync(path.join(COMPLIANCE, file)) }));
}

/** Fails (never skips) when python3-dirq is not importable by /usr/bin/python3. */
export function requirePythonDirq(): void {
  const r = spawnSync(PYTHON, ['-c', 'import dirq, dirq.QueueSimple, dirq.queue'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3-dirq missing: apt-get install -y python3-dirq (${r.error?.message ?? r.stderr})`);
}

const PRELUDE = `
import sys, json, base64
from dirq.QueueSimple import QueueSimple
from dirq.queue import Queue
DQN_SCHEMA = {'header': 'table', 'binary': 'binary?', 'text': 'string?'}
def b64(b): return base64.b64encode(b).decode('ascii')
def unb64(s): return base64.b64decode(s)
`;

/** Runs a Python snippet: `args` holds the JSON parameters; whatever it sets `result` to is returned. */
export function py<T = unknown>(code: string, args: unknown = null): T {
  const script = `${PRELUDE}\nargs = json.loads(sys.stdin.read() or 'null')\nresult = None\n${code}\nsys.stdout.write(json.dumps(result))\n`;
  const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(args), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed (status ${r.status}): ${r.error?.message ?? ''}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A message in a JSON-safe form, for exchanging with Python: the body base64'd when binary. */
export interface WireMessage {
  header: Record<string, string>;
  text: boolean;
  body: string;
}

export function toWire(m: Message): WireMessage {
  return {
    header: m.header,
    text: m.text,
    body: m.text ? (m.body as string) : (m.body as Buffer).toString('base64'),
  };
}

export function fromWire(w: WireMessage): Message {
  return new Message({ header: Object.entries(w.header), body: w.text ? w.body : Buffer.from(w.body, 'base64') });
}
