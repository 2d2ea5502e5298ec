/**
 * The plugin runtime over its spool, without a broker: the alias never resolves (RFC 6761 .invalid), and messages
 * are put into `<state_dir>/<plugin>/queue` as the plugin's Consumer writes them (python-dirq QueueSimple). The
 * broker side is megabusclt.interop.test.ts's.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEAD_LETTER_ATTEMPTS, DEAD_LETTER_ERROR, DEAD_LETTER_REASON } from '@msgbricks/handler';
import { loadConfig, type PluginEvent, PluginRunner } from '@msgbricks/megabus';
import { DQS, Message } from '@msgbricks/message';
import { layout, useTempDir } from '@msgbricks/test-support';

const dir = useTempDir('megabus-plugins-');
const ELEMENT = /^[0-9a-f]{8}\/[0-9a-f]{14}$/;
const runners: PluginRunner[] = [];

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

/** A configuration of one plugin `p` (YAML lines indented under it), state in `<dir>/state`. */
function config(plugin: string[], name = 'megabus.yaml'): string {
  const file = join(dir.path, name);
  const lines = [
    'server: mb.invalid',
    'auth_method: password',
    'user: u',
    'password: p',
    'destination: /topic/roger.state',
    'state_dir: state',
    'plugins:',
    '  p:',
    ...plugin.map((l) => `    ${l}`),
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function start(file: string, events: PluginEvent[] = []): Promise<PluginRunner> {
  const r = new PluginRunner({ config: loadConfig({ file }), onEvent: (e) => events.push(e), rescanInterval: 50 });
  runners.push(r);
  await r.start();
  return r;
}

const queue = () => new DQS(join(dir.path, 'state', 'p', 'queue'));

async function put(...messages: Message[]): Promise<void> {
  const q = queue();
  for (const m of messages) await q.addMessage(m);
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Elements of a spool, by its raw layout. */
const elements = (path: string) => layout(path).filter((f) => ELEMENT.test(f));

async function drain(path: string): Promise<Message[]> {
  const q = new DQS(path);
  const out: Message[] = [];
  for (const name of elements(path)) {
    expect(await q.lock(name)).toBe(true);
    out.push(await q.getMessage(name));
  }
  return out;
}

const of = <T extends PluginEvent['type']>(events: PluginEvent[], type: T) =>
  events.filter((e): e is Extract<PluginEvent, { type: T }> => e.type === type);

describe('megabus plugins', () => {
  test('plugins - a command action gets the body on stdin and the header in the environment; done: removed', async () => {
    const out = join(dir.path, 'out.txt');
    const events: PluginEvent[] = [];
    const r = await start(
      config([
        'actions:',
        '  - type: command',
        `    command: 'printf "%s %s %s " "$MSG_HEADER_HOST" "$MEGABUS_PLUGIN" "$MSG_ATTEMPT" >> ${out}; cat >> ${out}; echo >> ${out}'`,
      ]),
      events,
    );
    await put(new Message({ header: { host: 'disk42' }, body: 'draining' }));
    await until('handled', () => r.counters[0]?.runner.handled === 1);
    expect(fs.readFileSync(out, 'utf8')).toBe('disk42 p 1 draining\n');
    expect(of(events, 'handled')).toMatchObject([{ plugin: 'p', outcome: 'acted', attempt: 1 }]);
    await until('removed', () => elements(join(dir.path, 'state', 'p', 'queue')).length === 0);
    // The state_dir: per plugin its spool and its dead-letter spool, nothing else.
    const state = join(dir.path, 'state');
    expect(layout(state).filter((f) => !/^p\/(queue|dead-letter)\/./.test(f))).toEqual(['p/', 'p/dead-letter/', 'p/queue/']);
    await r.stop();
  });

  test('plugins - a failed command is retried with backoff, and the next attempt runs the actions again', async () => {
    const count = join(dir.path, 'count');
    const events: PluginEvent[] = [];
    const r = await start(
      config([
        'retry_delay: 0.1',
        'actions:',
        '  - type: command',
        // Fails the first time, succeeds the second.
        `    command: 'echo x >> ${count}; [ $(wc -l < ${count}) -ge 2 ]'`,
      ]),
      events,
    );
    await put(new Message({ body: 'once' }));
    await until('handled', () => r.counters[0]?.runner.handled === 1);
    expect(fs.readFileSync(count, 'utf8')).toBe('x\nx\n');
    const failed = of(events, 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.error.message).toBe('action 1 (command): CommandFailedError: the command exited with status 1');
    expect(failed[0]?.retryAt).toEqual(expect.any(Number));
    expect(of(events, 'handled')).toMatchObject([{ attempt: 2 }]);
  });

  test('plugins - after max_attempts the message is in the dead-letter spool with the reason, the error and the attempts', async () => {
    const r = await start(
      config(['max_attempts: 2', 'retry_delay: 0.05', 'actions:', '  - type: log', '  - type: command', '    command: exit 3']),
    );
    await put(new Message({ header: { host: 'disk42' }, body: 'never' }));
    await until('dead-lettered', () => r.counters[0]?.runner.deadLettered === 1);
    const dead = join(dir.path, 'state', 'p', 'dead-letter');
    expect(elements(dead)).toHaveLength(1);
    const [m] = await drain(dead);
    expect(m?.body).toBe('never');
    expect(m?.header).toEqual({
      host: 'disk42',
      [DEAD_LETTER_REASON]: 'failed 2 attempts',
      [DEAD_LETTER_ERROR]: 'ActionError: action 2 (command): CommandFailedError: the command exited with status 3',
      [DEAD_LETTER_ATTEMPTS]: '2',
    });
    expect(elements(join(dir.path, 'state', 'p', 'queue'))).toEqual([]);
  });

  test('plugins - an action past its timeout is stopped (the command gets SIGTERM) and the attempt fails', async () => {
    const pidFile = join(dir.path, 'pid');
    const r = await start(
      config([
        'max_attempts: 1',
        'actions:',
        '  - type: command',
        `    command: 'echo $$ > ${pidFile}; exec sleep 30'`,
        '    timeout: 0.3',
      ]),
    );
    const started = Date.now();
    await put(new Message({ body: 'slow' }));
    await until('dead-lettered', () => r.counters[0]?.runner.deadLettered === 1);
    expect(Date.now() - started).toBeLessThan(10_000);
    const [m] = await drain(join(dir.path, 'state', 'p', 'dead-letter'));
    expect(m?.getHeader(DEAD_LETTER_ERROR)).toBe('ActionError: action 1 (command): timed out after 0.3 s');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  test('plugins - http: 2xx done, 503 then 200 retried without counting, 400 a failed attempt; the header travels', async () => {
    const got: { status: number; headers: http.IncomingHttpHeaders; body: string }[] = [];
    const plan = new Map<string, number[]>([
      ['ok', [200]],
      ['busy', [503, 200]],
      ['bad', [400, 400]],
    ]);
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => {
        const status = plan.get(body)?.shift() ?? 500;
        got.push({ status, headers: req.headers, body });
        res.writeHead(status, status === 503 ? { 'retry-after': '0' } : {});
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const events: PluginEvent[] = [];
      const r = await start(
        config(['max_attempts: 2', 'retry_delay: 0.05', 'actions:', '  - type: http', `    url: http://127.0.0.1:${port}/hook`]),
        events,
      );
      await put(
        new Message({ header: { host: 'disk42', 'x y': 'été' }, body: 'ok' }),
        new Message({ body: 'busy' }),
        new Message({ body: 'bad' }),
      );
      await until('all done', () => (r.counters[0]?.runner.handled ?? 0) + (r.counters[0]?.runner.deadLettered ?? 0) === 3);
      const c = r.counters[0];
      expect(c?.runner).toMatchObject({ handled: 2, deadLettered: 1, failed: 2 });
      const ok = got.find((g) => g.body === 'ok');
      expect(ok?.headers['x-megabus-header-host']).toBe('disk42');
      expect(ok?.headers['x-megabus-header-x y']).toBeUndefined();
      expect(JSON.parse(ok?.headers['x-megabus-header'] as string)).toEqual({ host: 'disk42', 'x y': 'été' });
      expect(ok?.headers['x-megabus-plugin']).toBe('p');
      expect(ok?.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(got.filter((g) => g.body === 'busy').map((g) => g.status)).toEqual([503, 200]);
      expect(of(events, 'retry-later')).toHaveLength(1);
      expect(got.filter((g) => g.body === 'bad').map((g) => g.status)).toEqual([400, 400]);
      const [m] = await drain(join(dir.path, 'state', 'p', 'dead-letter'));
      expect(m?.getHeader(DEAD_LETTER_ERROR)).toBe(
        `ActionError: action 1 (http): POST http://127.0.0.1:${port}/hook: 400 Bad Request`,
      );
    } finally {
      server.close();
    }
  });

  test('plugins - http: a 503 with Retry-After: 0 is retried after the plugin retry_delay, not at once', async () => {
    let posts = 0;
    const server = http.createServer((req, res) => {
      req.resume().on('end', () => {
        posts++;
        res.writeHead(503, { 'retry-after': '0' });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      await start(config(['retry_delay: 0.5', 'actions:', '  - type: http', `    url: http://127.0.0.1:${port}/`]));
      await put(new Message({ body: 'busy' }));
      await until('the first POST', () => posts === 1);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // At 0, 0.5 s and 1.5 s (the backoff doubles): a tight loop would have made hundreds.
      expect(posts).toBeGreaterThanOrEqual(2);
      expect(posts).toBeLessThanOrEqual(3);
    } finally {
      server.close();
    }
  });

  test('plugins - http: a refused connection is retried later, and succeeds once the server listens', async () => {
    const server = http.createServer((req, res) => {
      req.resume().on('end', () => res.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const events: PluginEvent[] = [];
    const r = await start(
      config(['retry_delay: 0.05', 'actions:', '  - type: http', `    url: http://127.0.0.1:${port}/`]),
      events,
    );
    await put(new Message({ body: 'later' }));
    await until('two retries', () => of(events, 'retry-later').length >= 2);
    server.listen(port, '127.0.0.1');
    try {
      await until('handled', () => r.counters[0]?.runner.handled === 1);
      expect(r.counters[0]?.runner.failed).toBe(0);
    } finally {
      server.close();
    }
  });

  test('plugins - http: a request fetch refuses to make (a port it never uses) is a failed attempt, not a retry for ever', async () => {
    const r = await start(config(['max_attempts: 1', 'actions:', '  - type: http', '    url: http://127.0.0.1:6000/']));
    await put(new Message({ body: 'never' }));
    await until('dead-lettered', () => r.counters[0]?.runner.deadLettered === 1);
    const [m] = await drain(join(dir.path, 'state', 'p', 'dead-letter'));
    expect(m?.getHeader(DEAD_LETTER_ERROR)).toBe('ActionError: action 1 (http): POST http://127.0.0.1:6000/: bad port');
  });

  test('plugins - http: a request past the action timeout is aborted and the attempt fails', async () => {
    let aborted = 0;
    const server = http.createServer((req) => {
      // Never answers: the client's abort closes the connection.
      req.on('close', () => {
        aborted++;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await start(
        config(['max_attempts: 1', 'actions:', '  - type: http', `    url: http://127.0.0.1:${port}/`, '    timeout: 0.3']),
      );
      await put(new Message({ body: 'slow' }));
      await until('dead-lettered', () => r.counters[0]?.runner.deadLettered === 1);
      const [m] = await drain(join(dir.path, 'state', 'p', 'dead-letter'));
      expect(m?.getHeader(DEAD_LETTER_ERROR)).toBe('ActionError: action 1 (http): timed out after 0.3 s');
      await until('the request closed', () => aborted === 1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('plugins - spool: the message is added to a python-dirq QueueSimple, header and body as they came', async () => {
    const out = join(dir.path, 'out');
    const r = await start(config(['actions:', '  - type: spool', `    path: ${out}`]));
    await put(
      new Message({ header: { host: 'disk42', state: 'draining' }, body: 'b1' }),
      new Message({ body: Buffer.from([0, 1, 2]) }),
    );
    await until('handled', () => r.counters[0]?.runner.handled === 2);
    // Raw layout: python-dirq's intermediate directories of 8 hex digits, elements of 14.
    const files = layout(out);
    expect(files.filter((f) => f.endsWith('/')).every((d) => /^[0-9a-f]{8}\/$/.test(d))).toBe(true);
    expect(files.filter((f) => !f.endsWith('/'))).toHaveLength(2);
    expect(files.filter((f) => !f.endsWith('/')).every((f) => ELEMENT.test(f))).toBe(true);
    const got = await drain(out);
    expect(got.map((m) => [m.header, m.body])).toEqual([
      [{ host: 'disk42', state: 'draining' }, 'b1'],
      [{}, Buffer.from([0, 1, 2])],
    ]);
  });

  test('plugins - log: an event with the chosen header fields', async () => {
    const events: PluginEvent[] = [];
    const r = await start(config(['actions:', '  - type: log', '    headers: [host, state]', '    text: roger state']), events);
    await put(new Message({ header: { host: 'disk42', state: 'draining', other: 'x' }, body: '' }));
    await until('handled', () => r.counters[0]?.runner.handled === 1);
    expect(of(events, 'log')).toMatchObject([
      { plugin: 'p', level: 'info', text: 'roger state', fields: { header: { host: 'disk42', state: 'draining' } } },
    ]);
  });

  test('plugins - on_change: actions run only when the value changed for the key; the values survive a restart', async () => {
    const out = join(dir.path, 'changes');
    const file = config([
      'on_change:',
      '  key: host',
      '  field: body.state',
      'actions:',
      '  - type: command',
      `    command: 'printf "%s=%s\\n" "$MSG_HEADER_HOST" "$(cat)" >> ${out}'`,
    ]);
    const msg = (host: string | undefined, state: string) =>
      new Message({ header: host === undefined ? {} : { host }, body: JSON.stringify({ state }) });
    const stateFile = join(dir.path, 'state', 'p', 'on_change.json');
    let r = await start(file);
    await put(msg('a', 'draining'));
    await until('1', () => r.counters[0]?.runner.handled === 1);
    await put(msg('a', 'draining'), msg('b', 'production'), msg(undefined, 'x'));
    await until('4', () => r.counters[0]?.runner.handled === 4);
    await put(msg('a', 'production'));
    await until('5', () => r.counters[0]?.runner.handled === 5);
    expect(r.counters[0]).toMatchObject({ acted: 3, unchanged: 1, ignored: 1 });
    await r.stop();
    // On disk: the last values acted on, and no temporary file left.
    expect(JSON.parse(fs.readFileSync(stateFile, 'utf8'))).toEqual({ version: 1, values: { a: 'production', b: 'production' } });
    expect(layout(join(dir.path, 'state', 'p')).filter((f) => !/^(queue|dead-letter)\/./.test(f))).toEqual([
      'dead-letter/',
      'on_change.json',
      'queue/',
    ]);

    // A new process: the same values do not fire again, a new one does.
    r = await start(file);
    await put(msg('a', 'production'), msg('b', 'draining'));
    await until('2 more', () => r.counters[0]?.runner.handled === 2);
    expect(r.counters[0]).toMatchObject({ acted: 1, unchanged: 1 });
    expect(fs.readFileSync(out, 'utf8')).toBe(
      ['a={"state":"draining"}', 'b={"state":"production"}', 'a={"state":"production"}', 'b={"state":"draining"}', ''].join('\n'),
    );
    expect(JSON.parse(fs.readFileSync(stateFile, 'utf8')).values).toEqual({ a: 'production', b: 'draining' });
  });

  test('plugins - on_change: a failed action leaves the last value as it was, so the retry acts', async () => {
    const count = join(dir.path, 'count');
    const r = await start(
      config([
        'retry_delay: 0.05',
        'on_change: {key: host, field: state}',
        'actions:',
        '  - type: command',
        `    command: 'echo x >> ${count}; [ $(wc -l < ${count}) -ge 2 ]'`,
      ]),
    );
    const stateFile = join(dir.path, 'state', 'p', 'on_change.json');
    await put(new Message({ header: { host: 'a', state: 'draining' }, body: '' }));
    await until('failed once', () => r.counters[0]?.runner.failed === 1);
    expect(fs.existsSync(stateFile)).toBe(false);
    await until('handled', () => r.counters[0]?.runner.handled === 1);
    expect(JSON.parse(fs.readFileSync(stateFile, 'utf8')).values).toEqual({ a: 'draining' });
    expect(r.counters[0]?.acted).toBe(1);
  });

  test('plugins - an action that cannot be built stops the start and closes the actions built before it', async () => {
    const file = config(['actions:', '  - type: log', '  - type: spool', `    path: ${join(dir.path, 'out')}`]);
    let closed = 0;
    const r = new PluginRunner({
      config: loadConfig({ file }),
      actions: {
        log: () => ({ run: async () => undefined, close: () => void closed++ }),
        spool: () => {
          throw new Error('bad spool settings');
        },
      },
    });
    runners.push(r);
    await expect(r.start()).rejects.toThrow('bad spool settings');
    expect(closed).toBe(1);
  });

  test('plugins - a state file that is not ours stops the start with the file named', async () => {
    const file = config(['on_change: {key: host, field: state}', 'actions:', '  - type: log']);
    fs.mkdirSync(join(dir.path, 'state', 'p'), { recursive: true });
    fs.writeFileSync(join(dir.path, 'state', 'p', 'on_change.json'), 'garbage');
    const r = new PluginRunner({ config: loadConfig({ file }) });
    await expect(r.start()).rejects.toMatchObject({
      code: 'ERR_MEGABUS_STATE',
      message: expect.stringContaining('on_change.json: not JSON'),
    });
  });
});
