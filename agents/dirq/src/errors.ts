import { UsageError } from '@msgbricks/errors';

/**
 * Bad input the user can fix (exit 2 unless told otherwise). Each subclass
 * carries its own stable code so scripts and tests need not parse messages.
 */
export class CliError extends UsageError {
  override readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options);
    this.code = code;
  }
}

/** The queue path does not exist, or is not a directory (read-only subcommands never create it). */
export class QueueNotFoundError extends CliError {
  constructor(message: string) {
    super('ERR_DIRQ_CLI_NO_QUEUE', message);
  }
}

/** The directory's layout does not match `--type`, or the options do not apply to that type. */
export class QueueTypeError extends CliError {
  constructor(message: string) {
    super('ERR_DIRQ_CLI_QUEUE_TYPE', message);
  }
}

/** A malformed option value or element data given on the command line or stdin. */
export class InputError extends CliError {
  constructor(message: string, cause?: unknown) {
    super('ERR_DIRQ_CLI_INPUT', message, { cause });
  }
}

/**
 * Someone holds the element's lock. Exit 3, not 2: the input is fine and a
 * retry may succeed, which is what a consumer script wants to tell apart.
 */
export class ElementLockedError extends CliError {
  constructor(name: string) {
    super('ERR_DIRQ_CLI_LOCKED', `element is locked: ${name} (use --locked if you hold the lock)`, { exitCode: 3 });
  }
}
