/**
 * stompclt's --incoming-broker-stomp-debug and --outgoing-broker-stomp-debug: the STOMP connection emits `frame`,
 * `io` and `debug` events for the words given (@msgbricks/stomp never prints), and they become debug lines of the
 * command's log. As in stompclt, the words show these lines without --debug.
 */
import type { StompConnectionEvent } from '@msgbricks/stomp';
import type { Logger } from './logger';

/** Never logged, whatever the library did (it masks them already). */
const SECRET = new Set(['login', 'passcode', 'password']);

/** The logger the debug lines of one side go through: at least at debug level, with the side on every line. */
export function stompDebugLogger(logger: Logger, side: 'incoming' | 'outgoing'): Logger {
  const level = logger.levelVal <= logger.levels.values.debug ? logger.level : 'debug';
  return logger.child({ side }, { level });
}

/** One debug event as a log line (other events: nothing). */
export function logStompDebug(log: Logger, e: StompConnectionEvent): void {
  switch (e.type) {
    case 'frame': {
      const fields: Record<string, unknown> = { command: e.command, bodyLength: e.bodyLength };
      if (e.headers !== undefined) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(e.headers)) headers[k] = SECRET.has(k) ? '***' : v;
        fields.headers = headers;
      }
      if (e.body !== undefined) fields.body = e.truncated ? `${e.body}...` : e.body;
      log.debug(fields, e.direction === 'out' ? 'STOMP frame sent' : 'STOMP frame received');
      break;
    }
    case 'io':
      log.debug({ bytes: e.bytes }, e.direction === 'out' ? 'STOMP bytes written' : 'STOMP bytes read');
      break;
    case 'debug':
      log.debug(`STOMP ${e.what}: ${e.text}`);
      break;
  }
}
