import { MsgbricksError } from '@msgbricks/errors';

/** No broker of the list could be reached (or all refused us) within the allowed attempts, or the connection is closed. */
export class AmqpConnectError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_AMQP_CONNECT', message, options);
  }
}

/** A broker that refused the SASL exchange (the login, the client certificate). */
export class AmqpAuthError extends MsgbricksError {
  constructor(
    message: string,
    /** The AMQP condition rhea reported (`amqp:unauthorized-access` for a refused login), if any. */
    readonly condition?: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_AMQP_AUTH', message, options);
  }
}

/**
 * An error condition from the broker: a connection closed, a session ended or a link detached with an AMQP
 * error. `condition` is the symbolic AMQP code (`amqp:not-found`, `amqp:precondition-failed`...), `description`
 * the broker's text.
 */
export class AmqpBrokerError extends MsgbricksError {
  constructor(
    message: string,
    readonly condition: string,
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_AMQP_BROKER', message, options);
  }
}

/** A `--subscribe` entry that has no AMQP 1.0 address, or options of the incoming module that cannot work. */
export class AmqpSubscribeError extends MsgbricksError {
  constructor(message: string) {
    super('ERR_AMQP_SUBSCRIBE', message);
  }
}

/** An AMQP error object (`{condition, description}`) as an AmqpBrokerError saying where it happened. */
export function brokerError(where: string, error: unknown): AmqpBrokerError {
  const e = (error ?? {}) as { condition?: unknown; description?: unknown; message?: unknown };
  const condition = typeof e.condition === 'string' ? e.condition : 'amqp:internal-error';
  const description =
    typeof e.description === 'string' ? e.description : typeof e.message === 'string' ? e.message : 'no description';
  return new AmqpBrokerError(`${where}: ${condition}: ${description}`, condition, description);
}
