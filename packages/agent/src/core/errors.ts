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

/** A broker URI that cannot be used (syntax, scheme, port, failover option, unreadable `file:` list), whatever the protocol. */
export class BrokerUriError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BROKER_URI', message, options);
  }
}

/** A credential that cannot be used (scheme, missing or unknown field, bad percent-encoding, x509 without TLS). */
export class CredentialError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BROKER_CREDENTIAL', message, options);
  }
}

/** TLS settings that cannot be used: a certificate, key or CA file that cannot be read. */
export class TlsError extends MsgbricksError {
  constructor(
    message: string,
    /** The file concerned. */
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_BROKER_TLS', message, options);
  }
}
