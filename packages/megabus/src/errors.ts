import { MsgbricksError } from '@msgbricks/errors';

/** No broker of the alias took the message (each was tried once), and there is no spool to fall back on. */
export class NoBrokerError extends MsgbricksError {
  /** Why each broker failed, `host:port: reason`. */
  readonly failures: readonly string[];

  constructor(message: string, failures: readonly string[], options?: { cause?: unknown }) {
    super('ERR_MEGABUS_NO_BROKER', message, options);
    this.failures = failures;
  }
}

/** The alias could not be resolved to any broker address. */
export class ResolveError extends MsgbricksError {
  readonly alias: string;

  constructor(alias: string, message: string, options?: { cause?: unknown }) {
    super('ERR_MEGABUS_RESOLVE', message, options);
    this.alias = alias;
  }
}

/** The Publisher or Consumer was closed. */
export class ClosedError extends MsgbricksError {
  constructor(what: string) {
    super('ERR_MEGABUS_CLOSED', `${what} is closed`);
  }
}

/**
 * A plugin's action failed: code ERR_MEGABUS_ACTION (the action's own failure is the `cause`), or
 * ERR_MEGABUS_ACTION_TIMEOUT (it ran past its timeout). Its message names the plugin's action (`action 2 (http)`), so
 * that a log line and a dead-letter header say which one.
 */
export class ActionError extends MsgbricksError {}

/** The plugins' state (state_dir, the on_change values) cannot be used: code ERR_MEGABUS_STATE. */
export class StateError extends MsgbricksError {}
