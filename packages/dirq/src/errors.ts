import { MsgbricksError } from '@msgbricks/errors';

/** Base class of every error raised by @msgbricks/dirq. */
export class QueueError extends MsgbricksError {}

/** A system call failed; `errno` is Node's errno string (`ENOENT`, ...). */
export class FileSystemError extends QueueError {
  readonly errno: string;
  readonly syscall: string;
  readonly path: string;
  readonly dest: string | undefined;

  constructor(syscall: string, path: string, cause: unknown, dest?: string) {
    const c = cause as { code?: unknown; message?: unknown };
    const errno = typeof c?.code === 'string' ? c.code : 'EUNKNOWN';
    const target = dest === undefined ? path : `${path}, ${dest}`;
    // Every open of an element, lock or temporary file is O_NOFOLLOW: ELOOP then means the path is a link.
    const reason =
      errno === 'ELOOP'
        ? 'a symbolic link, never followed'
        : typeof c?.message === 'string'
          ? c.message.replace(/^[A-Z0-9]+: /, '').split(',')[0]
          : String(cause);
    super('ERR_DIRQ_SYSCALL', `cannot ${syscall}(${target}): ${errno}: ${reason}`, { cause });
    this.errno = errno;
    this.syscall = syscall;
    this.path = path;
    this.dest = dest;
  }
}

/** The error for a path that is a symbolic link where the queue expects its own file or directory (ELOOP, as O_NOFOLLOW gives). */
export function symlinkError(syscall: string, path: string): FileSystemError {
  return new FileSystemError(syscall, path, Object.assign(new Error('a symbolic link'), { code: 'ELOOP' }));
}

/** An element name that is not `XXXXXXXX/XXXXXXXXXXXXXX` (8 and 14 lowercase hex digits). */
export class InvalidNameError extends QueueError {
  constructor(name: unknown) {
    super('ERR_DIRQ_INVALID_NAME', `invalid element name: ${JSON.stringify(name)}`);
  }
}

/** A bad constructor option or schema. */
export class InvalidOptionError extends QueueError {
  constructor(message: string) {
    super('ERR_DIRQ_INVALID_OPTION', message);
  }
}

/** The operation needs the element to be locked by the caller and it is not. */
export class NotLockedError extends QueueError {
  constructor(path: string) {
    super('ERR_DIRQ_NOT_LOCKED', `element not locked: ${path}`);
  }
}

/** The element does not exist (any more). */
export class NoSuchElementError extends QueueError {
  constructor(path: string) {
    super('ERR_DIRQ_NO_ELEMENT', `no such element: ${path}`);
  }
}

/** Data that does not fit the schema, or an element whose files do not. */
export class DataError extends QueueError {
  constructor(message: string, cause?: unknown) {
    super('ERR_DIRQ_DATA', message, { cause });
  }
}

/** A bounded retry loop gave up (name collisions, concurrent re-locking). */
export class RetryExhaustedError extends QueueError {
  constructor(what: string, tries: number) {
    super('ERR_DIRQ_RETRIES', `${what}: gave up after ${tries} attempts`);
  }
}
