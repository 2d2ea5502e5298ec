// The built msghandle command on real spools: exit statuses of --exec, the header's environment, the body on stdin,
// time-outs, --module (JavaScript and TypeScript), signals, metrics and bad options.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { DEAD_LETTER_ATTEMPTS, DEAD_LETTER_ERROR, DEAD_LETTER_REASON, envName, headerEnv } from '@msgbricks/handler';
import { DQS, Message } from '@msgbricks/message';
import { freePorts, useTempDir } from '@msgbricks/test-support';
import { checkBuilt, drain, filesOf, fill, msghandle, until } from './helpers';

jest.setTimeout(90_000);

const tmp = useTempDir('msgbricks-msghandle-');

beforeAll(checkBuilt);

describe('msghandle', () => {
  test('msghandle - exit 0 removes, 75 retries without counting, anything else fails and dead-letters after --max-attempts', async () => {
    const spool = join(tmp.path, 'in');
    await fill(spool, [
      new Message({ header: { action: 'ok' }, body: 'a' }),
      new Message({ header: { action: 'later' }, body: 'b' }),
      new Message({ header: { action: 'fail' }, body: 'c' }),
    ]);
    const state = join(tmp.path, 'state');
    fs.mkdirSync(state);
    // "later" exits 75 twice, then 0; "fail" always exits 3. Each run is logged with its attempt number.
    const script = `
      echo "$MSG_HEADER_ACTION $MSG_ATTEMPT" >> ${state}/runs
      case "$MSG_HEADER_ACTION" in
        ok) exit 0 ;;
        later) n=$(cat ${state}/later 2>/dev/null || echo 0); echo $((n + 1)) > ${state}/later; [ "$n" -ge 2 ] && exit 0; exit 75 ;;
        *) exit 3 ;;
      esac`;
    const dead = join(tmp.path, 'dead');
    const r = await msghandle([
      '--queue',
      `path=${spool}`,
      '--exec',
      script,
      '--max-attempts',
      '3',
      '--dead-letter-queue',
      `path=${dead}`,
      '--retry-delay',
      '0.01',
      '--drain',
    ]).done;
    expect([r.status, r.out]).toEqual([0, '']);
    const runs = fs.readFileSync(join(state, 'runs'), 'utf8').trim().split('\n').sort();
    expect(runs).toEqual(['fail 1', 'fail 2', 'fail 3', 'later 1', 'later 1', 'later 1', 'ok 1']);
    expect(filesOf(spool)).toEqual([]);
    const [d, ...more] = await drain(new DQS(dead));
    expect(more).toEqual([]);
    expect(d?.body).toBe('c');
    expect(d?.getHeader(DEAD_LETTER_REASON)).toBe('failed 3 attempts');
    expect(d?.getHeader(DEAD_LETTER_ERROR)).toBe('CommandFailedError: the command exited with status 3');
    expect(d?.getHeader(DEAD_LETTER_ATTEMPTS)).toBe('3');
    expect(r.err).toMatch(/warn: attempt failed .*error="the command exited with status 3"/);
    expect(r.err).toMatch(/info: retry later /);
    expect(r.err).toMatch(/error: dead-lettered /);
    expect(r.err).toMatch(/info: stopped handled=2 failed=3 retried=4 deadLettered=1/);
  });

  test('msghandle - header fields in the environment as documented, the JSON file, the body on stdin byte for byte', async () => {
    const spool = join(tmp.path, 'in');
    const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const header = {
      'content-type': 'application/octet-stream',
      'x.priority': '4',
      été: 'summer',
      'a b': 'space',
      '9lives': 'cat',
      'x-y': 'first',
      x_y: 'second',
      nul: 'a\u0000b',
    };
    await fill(spool, [new Message({ header, body })]);
    const out = join(tmp.path, 'out');
    fs.mkdirSync(out);
    const r = await msghandle([
      '--queue',
      `path=${spool}`,
      '--exec',
      `cat > ${out}/body; env | grep '^MSG_' | sort > ${out}/env; cp "$MSG_JSON" ${out}/header.json; echo "$MSG_JSON" > ${out}/json-path`,
      '--drain',
    ]).done;
    expect(r.status).toBe(0);
    expect(fs.readFileSync(join(out, 'body')).equals(body)).toBe(true);
    const env = fs.readFileSync(join(out, 'env'), 'utf8').trim().split('\n');
    expect(env.filter((l) => l.startsWith('MSG_HEADER_'))).toEqual([
      'MSG_HEADER_9LIVES=cat',
      'MSG_HEADER_A_B=space',
      'MSG_HEADER_CONTENT_TYPE=application/octet-stream',
      'MSG_HEADER_X_PRIORITY=4',
      'MSG_HEADER_X_Y=first',
      'MSG_HEADER__T_=summer',
    ]);
    expect(env).toEqual(
      expect.arrayContaining(['MSG_ATTEMPT=1', 'MSG_TEXT=0', expect.stringMatching(/^MSG_NAME=[0-9a-f]{8}\/[0-9a-f]{14}$/)]),
    );
    expect(JSON.parse(fs.readFileSync(join(out, 'header.json'), 'utf8'))).toEqual(header);
    // The header file is gone once the command is over.
    expect(fs.existsSync(fs.readFileSync(join(out, 'json-path'), 'utf8').trim())).toBe(false);
  });

  test('msghandle - env name mapping', () => {
    expect(envName('content-type')).toBe('MSG_HEADER_CONTENT_TYPE');
    expect(envName('ß')).toBe('MSG_HEADER__');
    expect(
      headerEnv([
        ['a', '1'],
        ['A', '2'],
        ['b', 'x\0y'],
      ]),
    ).toEqual({ MSG_HEADER_A: '1' });
  });

  test('msghandle - --timeout kills a stuck command (SIGTERM), the attempt fails, the message is dead-lettered', async () => {
    const spool = join(tmp.path, 'in');
    await fill(spool, [new Message({ body: 'slow' })]);
    const dead = join(tmp.path, 'dead');
    const t0 = Date.now();
    const r = await msghandle([
      '--queue',
      `path=${spool}`,
      '--exec',
      'exec sleep 60',
      '--timeout',
      '0.3',
      '--max-attempts',
      '1',
      '--dead-letter-queue',
      `path=${dead}`,
      '--drain',
    ]).done;
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(r.err).toMatch(/warn: attempt timed out/);
    const [d] = await drain(new DQS(dead));
    expect(d?.getHeader(DEAD_LETTER_ERROR)).toBe('HandlerError: timed out after 300 ms');
    expect(filesOf(spool)).toEqual([]);
  });

  test('msghandle - --module loads a CommonJS handler, a TypeScript one and an ES module', async () => {
    const spool = join(tmp.path, 'in');
    await fill(spool, [new Message({ header: { n: '1' }, body: 'one' }), new Message({ header: { n: '2' }, body: 'two' })]);
    const seen = join(tmp.path, 'seen');
    const js = join(tmp.path, 'handler.js');
    fs.writeFileSync(
      js,
      `const fs = require('node:fs');\nexports.handler = async (m, ctx) => fs.appendFileSync(${JSON.stringify(seen)}, 'js ' + m.getHeader('n') + ' ' + m.body + ' ' + ctx.attempt + '\\n');\n`,
    );
    expect((await msghandle(['--queue', `path=${spool}`, '--module', js, '--drain']).done).status).toBe(0);
    await fill(spool, [new Message({ header: { n: '3' }, body: 'three' })]);
    const ts = join(tmp.path, 'handler.ts');
    fs.writeFileSync(
      ts,
      `import * as fs from 'node:fs';\ninterface M { getHeader(n: string): string | undefined; body: string }\nexport default function (m: M): void {\n  fs.appendFileSync(${JSON.stringify(seen)}, \`ts \${m.getHeader('n')} \${m.body}\\n\`);\n}\n`,
    );
    const r = await msghandle(['--queue', `path=${spool}`, '--module', ts, '--drain']).done;
    expect([r.status, r.err]).toEqual([0, expect.any(String)]);
    await fill(spool, [new Message({ header: { n: '4' }, body: 'four' })]);
    const mjs = join(tmp.path, 'handler.mjs');
    fs.writeFileSync(
      mjs,
      `import { appendFileSync } from 'node:fs';\nexport default async (m) => appendFileSync(${JSON.stringify(seen)}, 'mjs ' + m.getHeader('n') + '\\n');\n`,
    );
    expect((await msghandle(['--queue', `path=${spool}`, '--module', mjs, '--drain']).done).status).toBe(0);
    expect(fs.readFileSync(seen, 'utf8')).toBe('js 1 one 1\njs 2 two 1\nts 3 three\nmjs 4\n');
    expect(filesOf(spool)).toEqual([]);
  });

  test('msghandle - a module that exports no function, or does not load: exit 2 naming --module', async () => {
    const bad = join(tmp.path, 'bad.js');
    fs.writeFileSync(bad, 'exports.notAHandler = 1;\n');
    const spool = `path=${join(tmp.path, 'in')}`;
    const r1 = await msghandle(['--queue', spool, '--module', bad]).done;
    expect([r1.status, r1.err]).toEqual([
      2,
      `msghandle: --module ${bad}: exports no handler function (module.exports = fn, exports.handler or export default)\n`,
    ]);
    const broken = join(tmp.path, 'broken.js');
    fs.writeFileSync(broken, 'this is not javascript\n');
    const r2 = await msghandle(['--queue', spool, '--module', broken]).done;
    expect(r2.status).toBe(2);
    expect(r2.err).toMatch(/^msghandle: --module .*broken\.js: cannot load it: /);
    expect(r2.err).not.toMatch(/\n\s+at /);
  });

  test('msghandle - bad options: every problem at once, each naming its option, exit 2, no stack', async () => {
    const r = await msghandle([
      '--queue',
      'path=/x colour=red',
      '--concurrency',
      '0',
      '--timeout',
      'soon',
      '--max-attempts',
      '3',
      '--log-format',
      'xml',
    ]).done;
    expect(r.status).toBe(2);
    expect(r.err.trim().split('\n')).toEqual([
      'msghandle: --concurrency: "0" is not an integer >= 1 and <= 10000',
      'msghandle: --timeout: "soon" is not a number >= 0',
      'msghandle: --log-format: "xml" is not one of json, text',
      'msghandle: --queue: invalid queue spec "path=/x colour=red": unknown key: "colour"',
      'msghandle: --exec or --module: one is needed (what to run per message)',
      'msghandle: --max-attempts: needs --dead-letter-queue (a message is never dropped)',
    ]);
    const r2 = await msghandle(['--exec', 'true', '--nope']).done;
    expect([r2.status, r2.err]).toEqual([2, 'msghandle: Unknown argument: nope (see msghandle --help)\n']);
    const r3 = await msghandle(['--exec', 'true']).done;
    expect([r3.status, r3.err]).toEqual([2, 'msghandle: --queue: missing (the spool to handle)\n']);
    // Queues that cannot be opened are named by their option.
    const file = join(tmp.path, 'a-file');
    fs.writeFileSync(file, '');
    const r4 = await msghandle(['--queue', `path=${file}`, '--exec', 'true']).done;
    expect([r4.status, r4.err]).toEqual([2, `msghandle: --queue: cannot mkdir(${file}): ENOTDIR: not a directory\n`]);
    const r5 = await msghandle([
      '--queue',
      `path=${tmp.path}/q`,
      '--exec',
      'true',
      '--max-attempts',
      '2',
      '--dead-letter-queue',
      `path=${file}`,
    ]).done;
    expect([r5.status, r5.err]).toEqual([2, `msghandle: --dead-letter-queue: cannot mkdir(${file}): ENOTDIR: not a directory\n`]);
    const r6 = await msghandle(['--queue', 'type=NULL', '--exec', 'true']).done;
    expect([r6.status, r6.err]).toEqual([2, 'msghandle: --queue: a NULL queue has nothing to handle\n']);
  });

  test('msghandle - SIGTERM waits for the commands in flight, then exits 0; the rest stays, unlocked', async () => {
    const spool = join(tmp.path, 'in');
    await fill(
      spool,
      [1, 2, 3, 4, 5].map((i) => new Message({ body: String(i) })),
    );
    const started = join(tmp.path, 'started');
    const run = msghandle(['--queue', `path=${spool}`, '--exec', `echo x >> ${started}; sleep 1`, '--concurrency', '2']);
    await until(() => fs.existsSync(started) && fs.readFileSync(started, 'utf8').length === 4, 'two commands running');
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.status).toBe(0);
    expect(r.err).toMatch(/info: stopped handled=2 /);
    const left = filesOf(spool);
    expect(left).toHaveLength(3);
    expect(left.every((p) => /^[0-9a-f]{8}\/[0-9a-f]{14}$/.test(p))).toBe(true);
  });

  test('msghandle - --metrics-port serves the runner counters and the durations', async () => {
    const spool = join(tmp.path, 'in');
    await fill(spool, [new Message({ body: 'x' }), new Message({ body: 'y' })]);
    const [port] = await freePorts(1);
    const run = msghandle(['--queue', `path=${spool}`, '--exec', 'true', '--metrics-port', String(port)]);
    await until(() => /stopped|handling/.test(run.err()) && filesOf(spool).length === 0, 'both handled');
    let text = '';
    for (let i = 0; i < 50 && !/msghandle_messages_handled_total 2/.test(text); i++) {
      text = await new Promise<string>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${port}/metrics`, (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => {
              body += d;
            });
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    run.child.kill('SIGTERM');
    expect((await run.done).status).toBe(0);
    expect(text).toMatch(/^msghandle_messages_handled_total 2$/m);
    expect(text).toMatch(/^msghandle_handler_duration_seconds_count\{outcome="handled"\} 2$/m);
    expect(text).toMatch(/^msghandle_in_flight 0$/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });
});
