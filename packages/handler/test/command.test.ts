import * as fs from 'node:fs';
import { join } from 'node:path';
import { CommandFailedError, commandHandler, HandlerError, RetryLaterError } from '@msgbricks/handler';
import { Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('handler-command-');

/** Whether `pid` is a process that has not exited (a zombie has: it only waits for its parent). */
function alive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

function context(signal = new AbortController().signal) {
  return { name: '0000abcd/0000abcd000000', attempt: 2, signal };
}

describe('commandHandler', () => {
  test('commandHandler - the body on stdin byte for byte, the header in MSG_HEADER_* and $MSG_JSON, the context, extra variables', async () => {
    const out = join(dir.path, 'out');
    const h = commandHandler(`{ cat > ${out}.body; env | grep -E '^(MSG_|X_)' | sort; cat "$MSG_JSON"; } > ${out}.env`, {
      env: { X_EXTRA: 'yes' },
      tmpdir: dir.path,
    });
    const body = Buffer.from([0, 255, 10, 65]);
    await h(new Message({ header: { 'content-type': 'x/y', 'x.y': '1', x_y: '2' }, body }), context());
    expect(fs.readFileSync(`${out}.body`)).toEqual(body);
    const env = fs.readFileSync(`${out}.env`, 'utf8').split('\n');
    expect(env).toEqual(
      expect.arrayContaining([
        'MSG_ATTEMPT=2',
        'MSG_HEADER_CONTENT_TYPE=x/y',
        // Two names for one variable: the first in header order.
        'MSG_HEADER_X_Y=1',
        'MSG_NAME=0000abcd/0000abcd000000',
        'MSG_TEXT=0',
        'X_EXTRA=yes',
      ]),
    );
    const json = env.find((l) => l.startsWith('MSG_JSON='))?.slice('MSG_JSON='.length) as string;
    expect(env[env.length - 1]).toBe('{"content-type":"x/y","x.y":"1","x_y":"2"}');
    // The header file is gone once the command ended; its directory goes with close().
    expect(fs.existsSync(json)).toBe(false);
    expect(layout(dir.path).filter((f) => f.startsWith('msgbricks-command-'))).toEqual([
      expect.stringMatching(/^msgbricks-command-\w+\/$/),
    ]);
    h.close();
    expect(layout(dir.path).filter((f) => f.startsWith('msgbricks-command-'))).toEqual([]);
  });

  test('commandHandler - exit 0 resolves, 75 is RetryLaterError, any other status or a signal CommandFailedError', async () => {
    const h = commandHandler('exit "$(cat)"', { tmpdir: dir.path });
    const run = (code: string) => h(new Message({ body: code }), context()) as Promise<void>;
    await expect(run('0')).resolves.toBeUndefined();
    await expect(run('75')).rejects.toBeInstanceOf(RetryLaterError);
    await expect(run('3')).rejects.toMatchObject({
      name: 'CommandFailedError',
      code: 'ERR_HANDLER_COMMAND',
      status: 3,
      signal: null,
      message: 'the command exited with status 3',
    });
    const killed = commandHandler('kill -KILL $$', { tmpdir: dir.path });
    await expect(killed(new Message({ body: '' }), context())).rejects.toMatchObject({
      signal: 'SIGKILL',
      message: 'the command was killed by SIGKILL',
    });
    expect(new CommandFailedError(1, null)).toBeInstanceOf(HandlerError);
    h.close();
    killed.close();
  });

  test('commandHandler - the signal sends SIGTERM, then SIGKILL killAfter later to a command that ignores it', async () => {
    const ready = join(dir.path, 'ready');
    const h = commandHandler(`trap "" TERM; touch ${ready}; while :; do sleep 0.05; done`, {
      tmpdir: dir.path,
      killAfter: 300,
    });
    const ctl = new AbortController();
    const p = h(new Message({ body: '' }), context(ctl.signal)) as Promise<void>;
    while (!fs.existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    ctl.abort();
    await expect(p).rejects.toMatchObject({ signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    h.close();
  });

  test('commandHandler - capture: nothing printed, the end of the output in the failure', async () => {
    const h = commandHandler('echo one; printf "%0600d" 0; exit 4', { tmpdir: dir.path, capture: 20 });
    await expect(h(new Message({ body: '' }), context())).rejects.toMatchObject({
      status: 4,
      output: '0'.repeat(20),
      message: `the command exited with status 4: ${'0'.repeat(20)}`,
    });
    // Standard error too (the two pipes' order is the scheduler's: one of them here).
    const short = commandHandler('echo "on  stderr" >&2; exit 4', { tmpdir: dir.path, capture: 100 });
    await expect(short(new Message({ body: '' }), context())).rejects.toMatchObject({ output: 'on stderr' });
    h.close();
    short.close();
  });

  test('commandHandler - capture: over when /bin/sh exits, though a background grandchild still holds the output', async () => {
    const pidFile = join(dir.path, 'grandchild');
    // A mail transport that forks to deliver does this: the job outlives the shell and keeps its stdout and stderr.
    const h = commandHandler(`sleep 30 & echo $! > ${pidFile}; echo sent`, { tmpdir: dir.path, capture: 100 });
    const t0 = Date.now();
    await h(new Message({ body: '' }), context());
    expect(Date.now() - t0).toBeLessThan(5000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    // Left alone: it is the command's business (the mail being delivered), not a failure.
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    h.close();
  });

  test('commandHandler - the signal kills every stage of a pipeline, not /bin/sh alone', async () => {
    const pids = join(dir.path, 'pids');
    const h = commandHandler(`sh -c 'echo $$ >> ${pids}; exec sleep 30' | sh -c 'echo $$ >> ${pids}; exec sleep 30'`, {
      tmpdir: dir.path,
      capture: 100,
      killAfter: 300,
    });
    const ctl = new AbortController();
    const p = h(new Message({ body: '' }), context(ctl.signal)) as Promise<void>;
    const stages = (): number[] =>
      fs.existsSync(pids) ? fs.readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number) : [];
    while (stages().length < 2) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    ctl.abort();
    await expect(p).rejects.toMatchObject({ signal: 'SIGTERM' });
    expect(Date.now() - t0).toBeLessThan(5000);
    for (let i = 0; i < 50 && stages().some(alive); i++) await new Promise((r) => setTimeout(r, 20));
    expect(stages().filter(alive)).toEqual([]);
    h.close();
  });

  test('commandHandler - an empty command is a HandlerError ERR_HANDLER_OPTION', () => {
    expect(() => commandHandler(' ')).toThrow(expect.objectContaining({ code: 'ERR_HANDLER_OPTION' }));
  });
});
