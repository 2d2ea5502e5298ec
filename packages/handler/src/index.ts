export type { AttemptRecord, MessageSpool } from './attempts';
export { ATT_SUFFIX, readRecord, recordPath } from './attempts';
export type { CommandHandler, CommandOptions } from './command';
export { CommandFailedError, commandHandler, EX_TEMPFAIL, envName, HEADER_PREFIX, headerEnv, KILL_AFTER_MS } from './command';
export { HandlerError, RetryLaterError } from './errors';
export type { BackoffOptions, ConsumeOptions, Handler, HandlerContext, HandlerCounters, HandlerEventName } from './runner';
export { Consumer, consume, DEAD_LETTER_ATTEMPTS, DEAD_LETTER_ERROR, DEAD_LETTER_REASON } from './runner';
