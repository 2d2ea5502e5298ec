/**
 * The predefined actions of timed schedules (they work on arrival too): std_log, std_email, std_shutdown. Each is a
 * factory of an ActionFn; megabusclt builds them from a step's configuration keys.
 */
import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import { commandHandler } from '@msgbricks/handler';
import { Message } from '@msgbricks/message';
import type { ActionContext, ActionFn } from '../plugins/types';
import { sendSmtp } from './smtp';

/** The end of a command's output kept for its error (a library prints nothing). */
const CAPTURE = 500;

/**
 * Runs `command` by the handler runner's conventions (@msgbricks/handler's commandHandler, as the `command` action:
 * `/bin/sh -c`, the message's body on stdin and its header in MSG_HEADER_*; exit 0 done, 75 retry later, anything
 * else CommandFailedError with the end of the output), bounded by the context's signal.
 */
async function runCommand(
  command: string,
  message: Message,
  context: ActionContext,
  env?: Record<string, string>,
): Promise<void> {
  const h = commandHandler(command, { capture: CAPTURE, ...(env === undefined ? {} : { env }) });
  try {
    await h(message, { name: context.name ?? '', attempt: context.attempt, signal: context.signal });
  } finally {
    h.close();
  }
}

/** What std_log reports: one line's worth, for the command's logger. */
export interface StdLogEntry {
  readonly plugin: string;
  /** The event's key and the step, for a schedule step. */
  readonly key?: string;
  readonly step?: string;
  /** The due time (ms), for a schedule step. */
  readonly due?: number;
  /** The header fields chosen (all by default). */
  readonly header: Readonly<Record<string, string>>;
  /** One line: the plugin, the event, the step and its due time (the header is in `header`). */
  readonly text: string;
}

/** std_log: reports the message as an event (libraries never print: the caller logs it). */
export function stdLog(options: { onLog: (entry: StdLogEntry) => void; headers?: readonly string[] }): ActionFn {
  return async (message, context) => {
    const header: Record<string, string> = {};
    for (const [k, v] of message.headerEntries()) if (options.headers === undefined || options.headers.includes(k)) header[k] = v;
    options.onLog({
      plugin: context.plugin,
      key: context.step?.key,
      step: context.step?.name,
      due: context.step?.due,
      header,
      text: where(context),
    });
  };
}

function where(context: ActionContext): string {
  const s = context.step;
  return s === undefined
    ? `plugin ${context.plugin}`
    : `plugin ${context.plugin} event ${s.key} step ${s.name} due ${new Date(s.due).toISOString()}`;
}

export interface StdEmailOptions {
  /** Recipients. */
  to: readonly string[];
  /** Default `megabusclt@<host name>`. */
  from?: string;
  /** Default `[megabus] {plugin}: event {key}, step {step}`; `{plugin}`, `{key}`, `{step}`, `{due}` are replaced. */
  subject?: string;
  /** SMTP relay `host:port`; without it, `sendmail`. */
  smtp?: string;
  /** The sendmail command line (run by /bin/sh -c, the message on its input). Default `/usr/sbin/sendmail -t -i`. */
  sendmail?: string;
  /** The name given in EHLO. Default the host name. */
  helo?: string;
  /** Clock of the Date header (tests). */
  now?: () => number;
}

export const DEFAULT_SENDMAIL = '/usr/sbin/sendmail -t -i';

/** std_email: an e-mail saying which event and step, with the message's header and body. */
export function stdEmail(options: StdEmailOptions): ActionFn {
  const host = os.hostname();
  const from = options.from ?? `megabusclt@${host}`;
  const smtp = options.smtp === undefined ? undefined : splitHostPort(options.smtp);
  return async (message, context) => {
    const data = composeEmail(message, context, { ...options, from });
    if (smtp !== undefined)
      await sendSmtp({ ...smtp, helo: options.helo ?? host, from, to: options.to, data, signal: context.signal });
    else await runCommand(options.sendmail ?? DEFAULT_SENDMAIL, new Message({ body: data }), context);
  };
}

function splitHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (m === null) return { host: text, port: 25 };
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** The e-mail (RFC 5322, LF line ends): headers safe from injection, the body as is or base64 if it must. */
export function composeEmail(message: Message, context: ActionContext, o: StdEmailOptions & { from: string }): string {
  const s = context.step;
  const fill = (t: string): string =>
    t
      .replaceAll('{plugin}', context.plugin)
      .replaceAll('{key}', s?.key ?? '-')
      .replaceAll('{step}', s?.name ?? '-')
      .replaceAll('{due}', s === undefined ? '-' : new Date(s.due).toISOString());
  const subject = fill(o.subject ?? '[megabus] {plugin}: event {key}, step {step}');
  const body = message.text ? (message.body as string) : `(${message.body.length} bytes of binary data, not shown)`;
  const text = [
    `${where(context)}.`,
    '',
    'Message header:',
    ...message.headerEntries().map(([k, v]) => `  ${k}: ${v}`),
    '',
    'Message body:',
    body,
    '',
  ].join('\n');
  const plain = /^[\x20-\x7e\t\n]*$/.test(text) && text.split('\n').every((l) => l.length <= 998);
  const headers = [
    `From: ${oneLine(o.from)}`,
    `To: ${o.to.map(oneLine).join(', ')}`,
    `Subject: ${encodeWord(oneLine(subject))}`,
    `Date: ${rfc5322Date(o.now?.() ?? Date.now())}`,
    `Message-ID: <${randomUUID()}@${os.hostname()}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}`,
  ];
  const encoded = plain
    ? text
    : (
        Buffer.from(text, 'utf8')
          .toString('base64')
          .match(/.{1,76}/g) ?? []
      ).join('\n');
  return `${headers.join('\n')}\n\n${encoded}\n`;
}

/** A header value on one line: a CR or LF would start a header of the sender's choice. */
const oneLine = (v: string): string => v.replace(/[\r\n]+/g, ' ');

/** RFC 2047 for a header value that is not plain ASCII. */
function encodeWord(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : `=?UTF-8?B?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

function rfc5322Date(ms: number): string {
  // toUTCString gives "Sun, 06 Dec 2026 22:34:53 GMT": RFC 5322's form with the obsolete zone name, which every
  // reader accepts; +0000 is the modern spelling.
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

export interface StdShutdownOptions {
  /** Really run the command. Default false: a dry run that only reports what it would run. */
  enabled?: boolean;
  /** Minutes of notice given to shutdown (`+N`). Default 1. */
  minutes?: number;
  /** The command line (run by /bin/sh -c). Default `/sbin/shutdown -h +MINUTES`. */
  command?: string;
  /** Told what runs, or would run in a dry run. */
  onShutdown: (entry: {
    readonly plugin: string;
    readonly key?: string;
    readonly command: string;
    readonly dryRun: boolean;
  }) => void;
}

export const defaultShutdownCommand = (minutes = 1): string => `/sbin/shutdown -h +${minutes}`;

/**
 * std_shutdown: a dry run unless `enabled` is true. The command gets the announcement as a command action does (body
 * on stdin, header in MSG_HEADER_*), and the event's key and step in MEGABUS_KEY and MEGABUS_STEP. A schedule runs it
 * at most once (an attempt a crash interrupted is not run again: see Scheduler).
 */
export function stdShutdown(options: StdShutdownOptions): ActionFn {
  const command = options.command ?? defaultShutdownCommand(options.minutes);
  return async (message, context) => {
    const dryRun = options.enabled !== true;
    options.onShutdown({ plugin: context.plugin, key: context.step?.key, command, dryRun });
    if (dryRun) return;
    await runCommand(command, message, context, { MEGABUS_KEY: context.step?.key ?? '', MEGABUS_STEP: context.step?.name ?? '' });
  };
}
