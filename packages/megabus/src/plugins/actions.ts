/**
 * The actions a plugin runs, each an ActionFn (types.ts) made from its configuration by a factory of ACTIONS:
 * - `command`: @msgbricks/handler's commandHandler, msghandle's code and conventions (body on stdin, MSG_HEADER_*,
 *   $MSG_JSON; exit 0 done, 75 retry later, other failed), plus $MEGABUS_PLUGIN;
 * - `http`: POST of the body; 2xx done, 408, 429, 5xx and connection failures retry later, any other status a failed
 *   attempt;
 * - `spool`: the message added to a python-dirq QueueSimple (fsync'd before it counts as done);
 * - `log`: a `log` event with the chosen header fields (megabusclt writes it as a log line).
 * Every action is bounded by its timeout (boundAction): its signal fires, and an action that does not give up within
 * ABORT_GRACE_MS after it has failed anyway.
 */
import { commandHandler, KILL_AFTER_MS, RetryLaterError } from '@msgbricks/handler';
import { DQS, type Message } from '@msgbricks/message';
import type { PluginConfig } from '../config/types';
import { ActionError } from '../errors';
import type { PluginEvent } from './events';
import type { ActionConfig, ActionContext, ActionFn } from './types';

/** What a factory gets besides the action's configuration. */
export interface ActionEnv {
  readonly plugin: PluginConfig;
  readonly emit: (event: PluginEvent) => void;
}

/** An action ready to run, and what it holds to release at the stop. */
export interface BuiltAction {
  readonly run: ActionFn;
  close?(): void | Promise<void>;
}

export type ActionFactory = (config: ActionConfig, env: ActionEnv) => BuiltAction;

/** Past its signal, how long an action is waited for before it counts as failed (a command's SIGKILL comes first). */
export const ABORT_GRACE_MS = KILL_AFTER_MS + 1000;

// ---- command

const command: ActionFactory = (config, env) => {
  const h = commandHandler(config.command as string, { env: { MEGABUS_PLUGIN: env.plugin.name } });
  return {
    run: (message, ctx) => h(message, { name: ctx.name ?? '', attempt: ctx.attempt, signal: ctx.signal }) as Promise<void>,
    close: () => h.close(),
  };
};

// ---- http

/** The request header carrying the whole message header, as JSON (non-ASCII escaped, so any header travels). */
export const HTTP_HEADER_JSON = 'X-Megabus-Header';
/** The prefix of the request headers carrying one message header field each (those HTTP can carry as they are). */
export const HTTP_HEADER_PREFIX = 'X-Megabus-Header-';

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const PRINTABLE = /^[\x20-\x7e]*$/;

function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The request's headers for a message: see HTTP_HEADER_JSON and HTTP_HEADER_PREFIX. */
export function httpHeaders(message: Message, ctx: ActionContext): Record<string, string> {
  const h: Record<string, string> = {
    'content-type':
      message.getHeader('content-type') ?? (message.text ? 'text/plain; charset=utf-8' : 'application/octet-stream'),
    [HTTP_HEADER_JSON]: asciiJson(message.header),
    'X-Megabus-Plugin': ctx.plugin,
    'X-Megabus-Attempt': String(ctx.attempt),
  };
  for (const [k, v] of message.headerEntries()) {
    if (TOKEN.test(k) && PRINTABLE.test(v) && !Object.hasOwn(h, `${HTTP_HEADER_PREFIX}${k}`)) h[`${HTTP_HEADER_PREFIX}${k}`] = v;
  }
  return h;
}

/** Connection failures (the system's and undici's codes): the server is away or unreachable for now. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** HTTP statuses that mean "later" (the server is busy or away), not "this message is wrong". */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Retry-After in seconds (a date form is rare for these statuses: left to the backoff). */
function retryAfter(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  const n = v === null ? Number.NaN : Number(v);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

const http: ActionFactory = (config, env) => {
  const url = config.url as string;
  const { retryDelay, retryDelayMax } = env.plugin;
  // "Later" does not count as an attempt, so the runner's backoff does not grow with it: this one does, per action,
  // until a request succeeds, so that a server that is down is not called every retry_delay.
  let laters = 0;
  const later = (why: string, res?: Response, cause?: unknown): RetryLaterError => {
    // Retry-After is a floor, never less than the backoff: "0" would otherwise POST in a tight loop (not counted).
    const delay = Math.min(retryDelayMax, Math.max((res && retryAfter(res)) ?? 0, retryDelay * 2 ** laters));
    laters++;
    return new RetryLaterError(why, { delay, cause });
  };
  return {
    run: async (message, ctx) => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: httpHeaders(message, ctx),
          body: typeof message.body === 'string' ? message.body : new Uint8Array(message.body),
          redirect: 'manual',
          signal: ctx.signal,
        });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const why = `POST ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`;
        // Only the network is "later"; anything else (a port fetch refuses to use, a bad header) would fail again.
        if (cause?.code !== undefined && NETWORK_ERRORS.has(cause.code)) throw later(why, undefined, err);
        throw new ActionError('ERR_MEGABUS_ACTION', why, { cause: err });
      }
      // The body is read (and dropped) so that the connection can be used again.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        laters = 0;
        return;
      }
      const why = `POST ${url}: ${res.status} ${res.statusText}`.trim();
      if (retryable(res.status)) throw later(why, res);
      throw new ActionError('ERR_MEGABUS_ACTION', why);
    },
  };
};

// ---- spool

const spool: ActionFactory = (config) => {
  const q = new DQS(config.path as string, { fsync: true });
  return {
    run: async (message) => {
      await q.addMessage(message);
    },
  };
};

// ---- log

const log: ActionFactory = (config, env) => {
  const names = config.headers as string[] | undefined;
  const level = (config.level as 'debug' | 'info' | 'warning' | 'error' | undefined) ?? 'info';
  const text = (config.text as string | undefined) ?? 'message';
  return {
    run: async (message, ctx) => {
      const header: Record<string, string> = {};
      if (names === undefined) Object.assign(header, message.header);
      else
        for (const n of names) {
          const v = message.getHeader(n);
          if (v !== undefined) header[n] = v;
        }
      const fields: Record<string, unknown> = { element: ctx.name, header };
      if (config.body === true) fields.body = message.text ? message.body : `(${message.body.length} bytes)`;
      env.emit({ type: 'log', plugin: ctx.plugin, level, text, fields });
    },
  };
};

/** The action types a plugin may use (the keys of config/plugins.ts's ACTION_SCHEMAS). */
export const ACTIONS: Readonly<Record<string, ActionFactory>> = { command, http, spool, log };

/**
 * The action `fn` bounded by `ms`: past it, its signal fires (reason: an ActionError ERR_MEGABUS_ACTION_TIMEOUT) and
 * the attempt fails; an action that ignores its signal is waited for no longer than ABORT_GRACE_MS more. The outer
 * signal (megabusclt stopping) is passed on.
 */
export function boundAction(fn: ActionFn, label: string, ms: number): ActionFn {
  return (message, ctx) =>
    new Promise<void>((resolve, reject) => {
      const ctl = new AbortController();
      let grace: NodeJS.Timeout | undefined;
      const timeout = new ActionError('ERR_MEGABUS_ACTION_TIMEOUT', `${label}: timed out after ${ms / 1000} s`);
      const onAbort = (): void => {
        grace = setTimeout(() => finish(ctl.signal.reason), ABORT_GRACE_MS);
      };
      ctl.signal.addEventListener('abort', onAbort, { once: true });
      const onOuter = (): void => ctl.abort(ctx.signal.reason);
      if (ctx.signal.aborted) onOuter();
      else ctx.signal.addEventListener('abort', onOuter, { once: true });
      const timer = setTimeout(() => ctl.abort(timeout), ms);
      let settled = false;
      function finish(err?: unknown): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        ctx.signal.removeEventListener('abort', onOuter);
        if (err === undefined) resolve();
        else reject(err);
      }
      Promise.resolve()
        .then(() => fn(message, { ...ctx, signal: ctl.signal }))
        .then(
          () => finish(),
          // Cut short by the time-out: that is the failure, whatever the action made of its abort.
          (err: unknown) => finish(ctl.signal.reason === timeout ? timeout : err),
        );
    });
}
