/**
 * The contract between megabusclt's plugins, their actions and the timed schedules: every action, whether a plugin
 * runs it on arrival or a schedule runs it at a step, is an ActionFn. Its outcome follows the handler runner's
 * rules (@msgbricks/handler): resolving means done, throwing RetryLaterError means "later, without counting an
 * attempt", throwing anything else is a failed attempt (retried with backoff, dead-lettered after max_attempts).
 */
import type { Message } from '@msgbricks/message';

/** What an action learns besides the message. */
export interface ActionContext {
  /** The plugin that runs it. */
  readonly plugin: string;
  /** 1 for the first attempt; counts survive restarts (the handler runner's attempt records). */
  readonly attempt: number;
  /** Fires at the action's timeout or when megabusclt stops; an action must give up soon after. */
  readonly signal: AbortSignal;
  /** On arrival: the message's element in the plugin's spool (`XXXXXXXX/YYYYYYYYYYYYYY`), as a command's $MSG_NAME. */
  readonly name?: string;
  /** For a schedule step: the step's name and the event's key; undefined on arrival. */
  readonly step?: { readonly name: string; readonly key: string; readonly due: number };
}

export type ActionFn = (message: Message, context: ActionContext) => Promise<void>;

/** An action as configured: its kind (command, http, spool, log, std_log, std_email, std_shutdown) and its keys. */
export interface ActionConfig {
  readonly type: string;
  /** Seconds; undefined: the plugin's default. */
  readonly timeout?: number;
  readonly [key: string]: unknown;
}
