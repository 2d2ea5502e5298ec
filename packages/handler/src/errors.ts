import { MsgbricksError } from '@msgbricks/errors';

/**
 * Errors of the handler runner. Codes: ERR_HANDLER_OPTION (a bad option, named), ERR_HANDLER_TIMEOUT (an attempt
 * ran past `timeout`; the AbortSignal's reason), ERR_HANDLER_STOPPED (the runner stopped while the attempt ran; the
 * AbortSignal's reason), ERR_HANDLER_RETRY_LATER (thrown by a handler, see RetryLaterError).
 */
export class HandlerError extends MsgbricksError {}

/**
 * Thrown (or rejected with) by a handler that cannot do its work now but did nothing wrong (a database is down):
 * the message is released for a later attempt, after `delay` milliseconds if given (the backoff otherwise), and the
 * attempt does not count towards `maxAttempts`.
 */
export class RetryLaterError extends HandlerError {
  readonly delay: number | undefined;

  constructor(message = 'retry later', options?: { cause?: unknown; delay?: number }) {
    super('ERR_HANDLER_RETRY_LATER', message, options);
    this.delay = options?.delay;
  }
}
