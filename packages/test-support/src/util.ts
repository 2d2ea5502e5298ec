import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** Every private broker listens on the loopback interface only. */
export const HOST = '127.0.0.1';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The last `lines` lines of `text`. */
export function tail(text: string | undefined, lines = 40): string {
  return String(text || '')
    .split('\n')
    .slice(-lines)
    .join('\n');
}

export function tailFile(file: string): string {
  try {
    return tail(fs.readFileSync(file, 'utf8'));
  } catch {
    return '(no log)';
  }
}

/** Runs a command to completion in `cwd`; throws with its stderr if it fails. */
export function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}): ${r.error?.message ?? ''}\n${r.stderr}`);
}

/** Free loopback TCP ports: all bound to port 0 at once (so they differ), then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, HOST, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Whether something accepts a TCP connection on the loopback port. */
export function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.setTimeout(2000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}
