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
