import { MsgbricksError, UsageError } from '@msgbricks/errors';
import type { SpoolSide } from './metrics';

/**
 * Exit codes of the transfer commands (docs/stompclt.md): 0 success, 1 failure at run time (including
 * "N pending messages"), 2 bad input (options, configuration, unsupported feature, another instance
 * already holding the spool). `--status` uses the LSB codes instead: 0, 1, 3, 4.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Bad input the user can fix; the top-level catch prints `PROGRAM: message` and exits with `exitCode` (2). */
export class CliError extends UsageError {
  override readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options);
    this.code = code;
  }
}

/** A feature of the Perl or Python tool that msgbricks does not have (--daemon). */
export class UnsupportedError extends CliError {
  constructor(message: string) {
    super('ERR_TRANSFER_UNSUPPORTED', message);
  }
}

/** Another live instance holds the spool (in the same role) or the pid file. */
export class AlreadyRunningError extends CliError {
  constructor(message: string) {
    super('ERR_TRANSFER_RUNNING', message);
  }
}

/** A spool stayed unusable longer than --timeout-spool-fault: the command gives up (exit 1). */
export class SpoolFaultError extends MsgbricksError {
  constructor(
    readonly queue: string,
    readonly side: SpoolSide,
    seconds: number,
    options: { cause: Error },
  ) {
    super('ERR_TRANSFER_SPOOL_FAULT', `${side} spool ${queue} unusable for ${seconds} s: ${options.cause.message}`, options);
  }
}
