import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { CommandFailedError, RetryLaterError } from '@msgbricks/handler';
import {
  type ActionContext,
  defaultShutdownCommand,
  SmtpError,
  type StdLogEntry,
  stdEmail,
  stdLog,
  stdShutdown,
} from '@msgbricks/megabus';
import { Message } from '@msgbricks/message';
import { freePorts, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('megabus-std-');
const DUE = Date.UTC(2026, 2, 1, 6, 0, 0);
const context = (key = 'pc-1'): ActionContext => ({
  plugin: 'powercut',
  attempt: 1,
  signal: new AbortController().signal,
  step: { name: 'email', key, due: DUE },
});
const message = new Message({ header: { event_id: 'pc-1', room: '513' }, body: 'Room 513: power cut at 06:00\n.\nend' });

/** An executable shell script in the test's directory. */
function script(name: string, text: string): string {
  const file = join(dir.path, name);
  fs.writeFileSync(file, `#!/bin/sh\n${text}\n`, { mode: 0o755 });
  return file;
}

/** A tiny SMTP server: answers every command, records the dialogue; `reject` maps a command prefix to a reply. */
async function smtpServer(reject: Record<string, string> = {}) {
  const transcript: string[] = [];
  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    let buffer = '';
    let inData = false;
    let data = '';
    socket.write('220 test ESMTP\r\n');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        const nl = buffer.indexOf('\r\n');
        if (nl < 0) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            transcript.push(`DATA<${data}>`);
            socket.write('250 2.0.0 queued\r\n');
          } else data += `${line}\n`;
          continue;
        }
        transcript.push(line);
        const refused = Object.entries(reject).find(([prefix]) => line.startsWith(prefix));
        if (refused !== undefined) socket.write(`${refused[1]}\r\n`);
        else if (line.startsWith('EHLO')) socket.write('250-test\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
        else if (line === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (line === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { transcript, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('megabus std actions', () => {
  test('std_log - reports the event, the step and the chosen header fields as an event', async () => {
    const logged: StdLogEntry[] = [];
    await stdLog({ onLog: (e) => logged.push(e), headers: ['room'] })(message, context());
    expect(logged).toEqual([
      {
        plugin: 'powercut',
        key: 'pc-1',
        step: 'email',
        due: DUE,
        header: { room: '513' },
        text: 'plugin powercut event pc-1 step email due 2026-03-01T06:00:00.000Z',
      },
    ]);
  });

  test('std_email - sendmail mode: the e-mail on the command input; the key cannot inject a header; 75 is retry later, another status a failure', async () => {
    const out = join(dir.path, 'mail');
    const sendmail = `${script('sendmail', `echo "$@" > ${out}.args; cat > ${out}`)} -t -i`;
    const send = stdEmail({ to: ['ops@example.org', 'room513@example.org'], from: 'mb@example.org', sendmail, now: () => DUE });
    await send(message, context());
    expect(fs.readFileSync(`${out}.args`, 'utf8')).toBe('-t -i\n');
    const mail = fs.readFileSync(out, 'utf8');
    const [head, body] = mail.split('\n\n', 2);
    const headers = head.split('\n');
    expect(headers.filter((h) => !h.startsWith('Message-ID: '))).toEqual([
      'From: mb@example.org',
      'To: ops@example.org, room513@example.org',
      'Subject: [megabus] powercut: event pc-1, step email',
      'Date: Sun, 01 Mar 2026 06:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
    ]);
    expect(headers.find((h) => h.startsWith('Message-ID: '))).toMatch(/^Message-ID: <[0-9a-f-]{36}@.+>$/);
    expect(mail.slice(head.length + 2)).toBe(
      [
        'plugin powercut event pc-1 step email due 2026-03-01T06:00:00.000Z.',
        '',
        'Message header:',
        '  event_id: pc-1',
        '  room: 513',
        '',
        'Message body:',
        'Room 513: power cut at 06:00',
        '.',
        'end',
        '',
        '',
      ].join('\n'),
    );
    expect(body).toBeDefined();
    // A key from a message cannot add a header line.
    await send(message, context('pc-1\r\nBcc: victim@example.org'));
    const injected = fs.readFileSync(out, 'utf8').split('\n\n')[0].split('\n');
    expect(injected).toContain('Subject: [megabus] powercut: event pc-1 Bcc: victim@example.org, step email');
    expect(injected.filter((h) => h.startsWith('Bcc'))).toEqual([]);

    const tempfail = stdEmail({ to: ['ops@example.org'], sendmail: script('tempfail', 'cat >/dev/null; exit 75') });
    await expect(tempfail(message, context())).rejects.toBeInstanceOf(RetryLaterError);
    const broken = stdEmail({
      to: ['ops@example.org'],
      sendmail: script('broken', 'cat >/dev/null; echo "no such user" >&2; exit 67'),
    });
    const err = await broken(message, context()).catch((e) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err).toMatchObject({
      code: 'ERR_HANDLER_COMMAND',
      status: 67,
      message: 'the command exited with status 67: no such user',
    });
  });

  test('std_email - a non-ASCII subject and body are encoded (RFC 2047, base64)', async () => {
    const out = join(dir.path, 'mail');
    const send = stdEmail({ to: ['ops@example.org'], subject: 'Coupure {key} à {due}', sendmail: script('sm', `cat > ${out}`) });
    await send(new Message({ body: 'coupure électrique' }), context());
    const mail = fs.readFileSync(out, 'utf8');
    const subject = `Coupure pc-1 à 2026-03-01T06:00:00.000Z`;
    expect(mail).toContain(`Subject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=\n`);
    expect(mail).toContain('Content-Transfer-Encoding: base64\n');
    const body = mail.split('\n\n').slice(1).join('\n\n');
    expect(Buffer.from(body.replace(/\n/g, ''), 'base64').toString('utf8')).toContain('coupure électrique');
  });

  test('std_email - SMTP mode: the dialogue with a relay, dot stuffing, every recipient; a refused recipient is an SmtpError with its reply', async () => {
    const server = await smtpServer();
    try {
      const send = stdEmail({
        to: ['a@example.org', 'b@example.org'],
        from: 'mb@example.org',
        smtp: `127.0.0.1:${server.port}`,
        helo: 'node1',
      });
      await send(message, context());
      expect(server.transcript.slice(0, 5)).toEqual([
        'EHLO node1',
        'MAIL FROM:<mb@example.org>',
        'RCPT TO:<a@example.org>',
        'RCPT TO:<b@example.org>',
        'DATA',
      ]);
      const data = server.transcript[5];
      // The lone dot of the body was sent doubled and arrives (as the server saw it) as "..".
      expect(data).toContain('\nRoom 513: power cut at 06:00\n..\nend\n');
      expect(data).toContain('\nSubject: [megabus] powercut: event pc-1, step email\n');
      expect(server.transcript[6]).toBe('QUIT');
    } finally {
      await server.close();
    }
    const refusing = await smtpServer({ 'RCPT TO:<b@': '550 5.1.1 no such user', EHLO: '502 not implemented' });
    try {
      const send = stdEmail({ to: ['a@example.org', 'b@example.org'], smtp: `127.0.0.1:${refusing.port}`, helo: 'node1' });
      const err = await send(message, context()).catch((e) => e);
      expect(err).toBeInstanceOf(SmtpError);
      expect(err).toMatchObject({ code: 'ERR_SCHEDULE_SMTP', reply: 550 });
      expect(err.message).toBe(`127.0.0.1:${refusing.port}: RCPT TO b@example.org: 550 5.1.1 no such user`);
      // EHLO refused: HELO instead.
      expect(refusing.transcript.slice(0, 2)).toEqual(['EHLO node1', 'HELO node1']);
    } finally {
      await refusing.close();
    }
    const [nobody] = await freePorts(1);
    const err = await stdEmail({ to: ['a@example.org'], smtp: `127.0.0.1:${nobody}` })(message, context()).catch((e) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  test('std_shutdown - a dry run unless enabled: reports the command and runs nothing; enabled, it runs the configured command', async () => {
    const ran = join(dir.path, 'ran');
    const command = `${script('fake-shutdown', `echo "$MEGABUS_KEY $MEGABUS_STEP $@" > ${ran}`)} -h +5`;
    const seen: unknown[] = [];
    await stdShutdown({ command, onShutdown: (e) => seen.push(e) })(message, context());
    expect(fs.existsSync(ran)).toBe(false);
    // The default command, reported in a dry run (never run by a test).
    await stdShutdown({ minutes: 3, onShutdown: (e) => seen.push(e) })(message, context());
    expect(defaultShutdownCommand()).toBe('/sbin/shutdown -h +1');
    await stdShutdown({ command, enabled: true, onShutdown: (e) => seen.push(e) })(message, context());
    expect(fs.readFileSync(ran, 'utf8')).toBe('pc-1 email -h +5\n');
    expect(seen).toEqual([
      { plugin: 'powercut', key: 'pc-1', command, dryRun: true },
      { plugin: 'powercut', key: 'pc-1', command: '/sbin/shutdown -h +3', dryRun: true },
      { plugin: 'powercut', key: 'pc-1', command, dryRun: false },
    ]);
    const failing = stdShutdown({ command: 'exit 1', enabled: true, onShutdown: () => undefined });
    await expect(failing(message, context())).rejects.toMatchObject({ code: 'ERR_HANDLER_COMMAND', status: 1 });
  });
});
