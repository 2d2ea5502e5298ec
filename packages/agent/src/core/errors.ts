import { MsgbricksError } from '@msgbricks/errors';

/** The next hop refused a message for good (a broker ERROR for this message, a message too big...): dead-letter it. */
export class RejectedError extends MsgbricksError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('ERR_AGENT_REJECTED', reason, options);
  }
}

/** The transfer ended with messages neither delivered nor given back in time. */
export class PendingError extends MsgbricksError {
  constructor(readonly pending: number) {
    super('ERR_AGENT_PENDING', `${pending} pending messages`);
  }
}
