/**
 * A minimal SMTP client (RFC 5321) for std_email: one message to a relay, typically the host's own MTA on
 * localhost:25. EHLO (HELO if the server does not know it), MAIL FROM, RCPT TO for each recipient, DATA with dot
 * stuffing, QUIT. No STARTTLS and no AUTH: a relay that needs them is reached through the local MTA (sendmail mode).
 */
import * as net from 'node:net';
import { ScheduleError } from './event';

/** The server answered a command with an error (4xx temporary, 5xx permanent), or the dialogue broke. */
export class SmtpError extends ScheduleError {
  /** The reply code, or undefined when the connection failed. */
  readonly reply: number | undefined;

  constructor(message: string, reply?: number, options?: { cause?: unknown }) {
    super('ERR_SCHEDULE_SMTP', message, options);
    this.reply = reply;
  }
}

export interface SmtpOptions {
  host: string;
  port: number;
  /** The name said in EHLO. */
  helo: string;
  from: string;
  to: readonly string[];
  /** The message, headers and body, lines ending in CRLF or LF. */
  data: string;
  signal?: AbortSignal;
}

interface Reply {
  code: number;
  text: string;
}

/** Sends one message; resolves once the server accepted it (250 after the data). */
export async function sendSmtp(o: SmtpOptions): Promise<void> {
  const where = `${o.host}:${o.port}`;
  const socket = net.connect({ host: o.host, port: o.port });
  const replies: Reply[] = [];
  const waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  let buffer = '';
  let lines: string[] = [];
  const fail = (err: Error): void => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
    socket.destroy();
  };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (;;) {
      const nl = buffer.indexOf('\n');
      if (nl < 0) break;
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      // The last line of a reply is "ddd text"; the others "ddd-text".
      if (/^\d{3}(?: |$)/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join(' ') };
        lines = [];
        const w = waiting.shift();
        if (w === undefined) replies.push(reply);
        else w.resolve(reply);
      } else if (!/^\d{3}-/.test(line)) fail(new SmtpError(`${where}: not an SMTP reply: ${JSON.stringify(line.slice(0, 80))}`));
    }
  });
  socket.on('error', (err) => fail(new SmtpError(`${where}: ${err.message}`, undefined, { cause: err })));
  socket.on('close', () => fail(new SmtpError(`${where}: connection closed by the server`)));
  const onAbort = (): void => fail(new SmtpError(`${where}: aborted (${String(o.signal?.reason?.message ?? 'signal')})`));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();

  const next = (): Promise<Reply> => {
    const r = replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
  const expect = async (what: string, ok: (code: number) => boolean): Promise<Reply> => {
    const r = await next();
    if (!ok(r.code)) throw new SmtpError(`${where}: ${what}: ${r.code} ${r.text}`, r.code);
    return r;
  };
  const say = (line: string): void => {
    socket.write(`${line}\r\n`);
  };
  const ok2 = (c: number) => c >= 200 && c < 300;

  try {
    await expect('greeting', (c) => c === 220);
    say(`EHLO ${o.helo}`);
    const ehlo = await next();
    if (!ok2(ehlo.code)) {
      say(`HELO ${o.helo}`);
      await expect('HELO', ok2);
    }
    say(`MAIL FROM:<${o.from}>`);
    await expect('MAIL FROM', ok2);
    for (const to of o.to) {
      say(`RCPT TO:<${to}>`);
      await expect(`RCPT TO ${to}`, ok2);
    }
    say('DATA');
    await expect('DATA', (c) => c === 354);
    // CRLF line ends, and a line starting with a dot gets another (RFC 5321 4.5.2).
    const body = o.data.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    socket.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    await expect('message', ok2);
    say('QUIT');
    await next().catch(() => undefined);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    socket.removeAllListeners('close');
    socket.on('error', () => undefined);
    socket.end();
    socket.destroy();
  }
}
