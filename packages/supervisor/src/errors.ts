import { MsgbricksError } from '@msgbricks/errors';

/** A service could not be started: its command could not be spawned, exited at once, or never became ready. */
export class StartError extends MsgbricksError {
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_SUPERVISE_START', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** A control-socket request that names no entry of the tree, or a command that the entry does not support. */
export class ControlError extends MsgbricksError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SUPERVISE_CONTROL', message, options);
  }
}
