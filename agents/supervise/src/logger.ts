/**
 * The command's one logger, as simplevisor's `--log`: stdout (the default; the journal under systemd), file
 * (`--logfile`), syslog (through util-linux `logger -t LOGNAME`), or null. Levels are simplevisor's.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { errnoOf, UsageError } from '@msgbricks/errors';
import type { GlobalSpec, LogLevel } from '@msgbricks/supervisor';

const RANK = { debug: 0, info: 1, warning: 2, error: 3, critical: 4 } as const;

export type Logger = (level: LogLevel | 'critical', message: string) => void;

export function makeLogger(g: Pick<GlobalSpec, 'log' | 'logfile' | 'loglevel' | 'logname'>): Logger {
  const min = RANK[g.loglevel];
  let write: (line: string) => void;
  if (g.log === 'null') return () => undefined;
  if (g.log === 'file') {
    let fd: number;
    try {
      fd = fs.openSync(g.logfile as string, 'a', 0o640);
    } catch (err) {
      throw new UsageError(`cannot open(${g.logfile}): ${errnoOf(err) ?? String(err)}`, { cause: err });
    }
    write = (line) => fs.writeSync(fd, line);
  } else if (g.log === 'syslog') {
    const child = spawn('logger', ['-t', `${g.logname}[${process.pid}]`], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    write = (line) => child.stdin.write(line.replace(/^\S+ \S+: /, ''));
  } else {
    write = (line) => fs.writeSync(1, line);
  }
  return (level, message) => {
    if (RANK[level] < min) return;
    write(`${new Date().toISOString()} ${g.logname}[${process.pid}]: ${level}: ${message}\n`);
  };
}
