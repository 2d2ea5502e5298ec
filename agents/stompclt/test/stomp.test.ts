/**
 * The built command against a scripted STOMP broker (packages/stomp/test/fake-broker.ts): the frames it sends, its
 * debug lines and metrics, without a real broker.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS, Message } from '@msgbricks/message';
import { FakeBroker } from '../../../packages/stomp/test/fake-broker';
import { checkBuilt, expectUsageError, freePort, type Result, scrapeMetrics, start, stompclt, tempDir, waitFor } from './helpers';

jest.setTimeout(30_000);

let tmp: string;
let broker: FakeBroker | undefined;
beforeAll(checkBuilt);
beforeEach(() => {
  tmp = tempDir();
});
afterEach(async () => {
  await broker?.stop();
  broker = undefined;
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function fake(options: ConstructorParameters<typeof FakeBroker>[0] = {}): Promise<FakeBroker> {
  broker = await new FakeBroker(options).start();
  return broker;
}

/** Runs the command in the background (the fake broker lives in this process: spawnSync would block it). */
async function run(args: string[]): Promise<Result> {
  const r = start(args, tmp);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
  try {
    return await r.done;
  } finally {
    clearTimeout(timer);
  }
}

async function spool(n: number, header: Record<string, string> = { destination: '/queue/out' }): Promise<string> {
  const path = join(tmp, 'in');
  const q = new DQS(path);
  for (let i = 0; i < n; i++) await q.addMessage(new Message({ header: { ...header, n: String(i) }, body: `body ${i}` }));
  return path;
}

describe('stompclt - against a scripted STOMP broker', () => {
  test('stompclt - --unsubscribe: one UNSUBSCRIBE per subscription at exit, the n-th entry with the n-th, before DISCONNECT', async () => {
    const b = await fake();
    const r = await run([
      '--incoming-broker-uri',
      b.uri,
      '--incoming-broker-connect',
      'client-id=msgbricks-test',
      '--subscribe',
      'destination=/topic/news activemq.subscriptionName=news-sub',
      '--subscribe',
      'destination=/queue/other',
      '--unsubscribe',
      'activemq.subscriptionName=news-sub',
      '--outgoing-queue',
      `path=${join(tmp, 'out')}`,
      '--timeout-inactivity',
      '0.3',
    ]);
    expect(r.status).toBe(0);
    expect(b.commands()).toEqual(['CONNECT', 'SUBSCRIBE', 'SUBSCRIBE', 'UNSUBSCRIBE', 'UNSUBSCRIBE', 'DISCONNECT']);
    expect(b.frames[0]?.headers['client-id']).toBe('msgbricks-test');
    const [s1, s2] = b.frames.filter((f) => f.command === 'SUBSCRIBE');
    const [u1, u2] = b.frames.filter((f) => f.command === 'UNSUBSCRIBE');
    expect(u1?.headers).toEqual({ 'activemq.subscriptionName': 'news-sub', id: s1?.headers.id, receipt: expect.any(String) });
    expect(u2?.headers).toEqual({ id: s2?.headers.id, receipt: expect.any(String) });
  });

  test('stompclt - without --unsubscribe the subscriptions are left to the broker', async () => {
    const b = await fake();
    const r = await run([
      '--incoming-broker-uri',
      b.uri,
      '--subscribe',
      'destination=/queue/other',
      '--outgoing-queue',
      `path=${join(tmp, 'out')}`,
      '--timeout-inactivity',
      '0.3',
    ]);
    expect(r.status).toBe(0);
    expect(b.commands()).toEqual(['CONNECT', 'SUBSCRIBE', 'DISCONNECT']);
  });

  test('stompclt - --outgoing-broker-stomp-debug: frames as debug lines without --debug, credentials never logged', async () => {
    const b = await fake();
    const base = [
      '--incoming-queue',
      `path=${await spool(2)}`,
      '--outgoing-broker-uri',
      b.uri,
      '--outgoing-broker-auth',
      'plain name=someone pass=s3cr3t',
    ];
    const r = await run([...base, '--outgoing-broker-stomp-debug', 'header body', '--log-format', 'json']);
    expect(r.status).toBe(0);
    const lines = r.err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const frames = lines.filter((l) => typeof l.msg === 'string' && /^STOMP frame/.test(l.msg));
    const seen = frames.map((l) => `${l.level} ${l.side} ${l.msg} ${l.command}`);
    // The SENDs and their RECEIPTs may interleave.
    expect([...seen.slice(0, 2), ...seen.slice(2, 6).sort(), ...seen.slice(6)]).toEqual([
      'debug outgoing STOMP frame sent CONNECT',
      'debug outgoing STOMP frame received CONNECTED',
      'debug outgoing STOMP frame received RECEIPT',
      'debug outgoing STOMP frame received RECEIPT',
      'debug outgoing STOMP frame sent SEND',
      'debug outgoing STOMP frame sent SEND',
      'debug outgoing STOMP frame sent DISCONNECT',
      'debug outgoing STOMP frame received RECEIPT',
    ]);
    expect(frames[0]?.headers).toMatchObject({ login: '***', passcode: '***' });
    expect(frames.find((f) => f.command === 'SEND')).toMatchObject({
      bodyLength: 6,
      body: 'body 0',
      headers: { destination: '/queue/out', n: '0' },
    });
    expect(r.err).not.toMatch(/someone|s3cr3t/);
    // Other log lines keep the command's level: no other debug line.
    expect(lines.filter((l) => l.level === 'debug' && !/^STOMP /.test(String(l.msg)))).toEqual([]);
    // "command" alone: no headers, no body.
    const c = await run([
      ...base.slice(0, 1),
      `path=${await spool(1)}`,
      ...base.slice(2),
      '--outgoing-broker-stomp-debug',
      'command',
    ]);
    expect(c.err).toMatch(/debug: STOMP frame sent side=outgoing command=SEND bodyLength=6\n/);
    expect(c.err).not.toMatch(/headers=|body=/);
  });

  test('stompclt - metrics: receipt latency histogram and reconnects per side (a late receipt drops the session)', async () => {
    // The first SEND of the first session gets no RECEIPT: --timeout-broker drops the session, the agent reconnects.
    const b = await fake({ holdReceipt: (f) => f.command === 'SEND' && f.session === 1 && f.headers.n === '0' });
    const port = await freePort();
    const agent = start(
      [
        '--incoming-queue',
        `path=${await spool(5)}`,
        '--outgoing-broker-uri',
        b.uri,
        '--outgoing-broker-reconnect',
        'initial-delay=0.05',
        '--timeout-broker',
        '0.5',
        '--remove',
        '--loop',
        '--metrics-port',
        String(port),
      ],
      tmp,
    );
    let text = '';
    await waitFor('the five messages acked', async () => {
      text = await scrapeMetrics(port).catch(() => '');
      return /^stompclt_messages_acked_total 5$/m.test(text);
    });
    agent.child.kill('SIGTERM');
    expect((await agent.done).status).toBe(0);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="outgoing"\} 1$/m);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="incoming"\} 0$/m);
    const count = Number(/^stompclt_receipt_latency_seconds_count (\d+)$/m.exec(text)?.[1]);
    // Every message once, some twice (sent again on the new session): at least once.
    expect(count).toBeGreaterThanOrEqual(5);
    expect(text).toMatch(new RegExp(`^stompclt_receipt_latency_seconds_bucket\\{le="\\+Inf"\\} ${count}$`, 'm'));
  });

  test('stompclt - --metrics-address needs --metrics-port; the default address is loopback', async () => {
    expectUsageError(
      stompclt(
        ['--incoming-queue', `path=${join(tmp, 'a')}`, '--outgoing-queue', 'type=NULL', '--metrics-address', '0.0.0.0'],
        tmp,
      ),
      /--metrics-address: needs metrics-port/,
    );
    const port = await freePort();
    const r = stompclt(
      ['--incoming-queue', `path=${join(tmp, 'a')}`, '--outgoing-queue', 'type=NULL', '--metrics-port', String(port)],
      tmp,
    );
    expect(r.status).toBe(0);
    expect(r.err).toMatch(new RegExp(`serving Prometheus metrics at /metrics address=127\\.0\\.0\\.1 port=${port}`));
  });
});
