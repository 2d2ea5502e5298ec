import { MsgbricksError } from '@msgbricks/errors';

/** Base of the notify gateway's errors. */
export class NotifyError extends MsgbricksError {}

/**
 * A published notification (or a subscription request) that is not what the API says. `reason` is the cvmfs-notify
 * reason (`invalid_message`) that goes into the 400 answer; the message says what exactly is wrong.
 */
export class InvalidMessageError extends NotifyError {
  constructor(
    message: string,
    readonly reason = 'invalid_message',
    options?: { cause?: unknown },
  ) {
    super('ERR_NOTIFY_INVALID_MESSAGE', message, options);
  }
}

/** A `.cvmfspublished` manifest that cannot be parsed or whose hash line does not match its content. */
export class ManifestError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_MANIFEST', message, options);
  }
}

/** The last-value cache's spool could not be read or written; names the operation and the path. */
export class CacheError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_CACHE', message, options);
  }
}

/** The broker refused a publish or is not connected: the publisher should try again. */
export class BrokerUnavailableError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_BROKER', message, options);
  }
}

/**
 * The cvmfs client configuration could not be read (a file the shell refused: its message names the file and line),
 * or does not say what is needed (`what`: no server URL, no public key).
 */
export class CvmfsConfigError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_CVMFS_CONFIG', message, options);
  }
}

/** A master public key (or a directory of them) that cannot be read, named. */
export class PublicKeyError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_PUBLIC_KEY', message, options);
  }
}

/** None of a repository's locations gave the whitelist or the certificate: nothing is known about the signature yet. */
export class RepositoryFetchError extends NotifyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NOTIFY_FETCH', message, options);
  }
}
