/**
 * Base error of every msgbricks package. Each subclass has a stable `code`
 * (what programs branch on), a `name` (what people read) and, where it wraps
 * another failure, the original error as `cause`.
 */
export class MsgbricksError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Raised by commands for bad input (usage, configuration, unknown element):
 * the top-level catch prints the message on one line and exits with `exitCode`.
 */
export class UsageError extends MsgbricksError {
  readonly exitCode: number;

  constructor(message: string, options?: { cause?: unknown; exitCode?: number }) {
    super('ERR_USAGE', message, options);
    this.exitCode = options?.exitCode ?? 2;
  }
}

/** Errno string (`ENOENT`, ...) of a Node system error, or undefined. */
export function errnoOf(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object') {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.errno === 'string') return e.errno;
    if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return e.code;
  }
  return undefined;
}

/** What was thrown, as an Error: a thrown string or other value becomes an Error with that text as its message. */
export function errorOf(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
