import { pino } from 'pino';
import { logStompDebug, stompDebugLogger } from '../src/stompdebug';

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level, base: undefined, timestamp: false }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { logger, lines };
}

describe('transfer-cli stomp debug', () => {
  test('stomp debug - frames become debug lines, shown without --debug, credentials never logged', () => {
    const { logger, lines } = capture('info');
    const log = stompDebugLogger(logger, 'outgoing');
    logStompDebug(log, {
      type: 'frame',
      direction: 'out',
      command: 'CONNECT',
      headers: { login: 'someone', passcode: 's3cr3t', host: '/' },
      bodyLength: 0,
    });
    logStompDebug(log, {
      type: 'frame',
      direction: 'in',
      command: 'MESSAGE',
      bodyLength: 300,
      body: 'x'.repeat(200),
      truncated: true,
    });
    logStompDebug(log, { type: 'io', direction: 'in', bytes: 42 });
    logStompDebug(log, { type: 'debug', what: 'connection', text: 'sending DISCONNECT' });
    logStompDebug(log, { type: 'lost', error: new Error('x') });
    expect(lines.map((l) => [l.level, l.side, l.msg])).toEqual([
      [20, 'outgoing', 'STOMP frame sent'],
      [20, 'outgoing', 'STOMP frame received'],
      [20, 'outgoing', 'STOMP bytes read'],
      [20, 'outgoing', 'STOMP connection: sending DISCONNECT'],
    ]);
    expect(lines[0]).toMatchObject({ command: 'CONNECT', bodyLength: 0, headers: { login: '***', passcode: '***', host: '/' } });
    expect(lines[1]).toMatchObject({ command: 'MESSAGE', bodyLength: 300, body: `${'x'.repeat(200)}...` });
    expect(JSON.stringify(lines)).not.toMatch(/someone|s3cr3t/);
    // The command's own level stays.
    logger.debug('not shown');
    expect(lines).toHaveLength(4);
  });

  test('stomp debug - a logger already at trace (-dd) keeps its level', () => {
    const { logger } = capture('trace');
    expect(stompDebugLogger(logger, 'incoming').level).toBe('trace');
    expect(stompDebugLogger(capture('warn').logger, 'incoming').level).toBe('debug');
  });
});
