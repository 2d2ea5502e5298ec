/**
 * STOMP as the commands see it (the agent's BrokerProtocol): its schemes, its modules made from the normalised
 * broker settings, and the log lines of its debug events (stompclt's --*-broker-stomp-debug words).
 */
import type { BrokerLogLine, BrokerProtocol, BrokerSettings } from '@msgbricks/agent';
import type { StompConnectionEvent, StompConnectionOptions } from './connection';
import { StompIncoming, StompOutgoing } from './modules';
import { parseStompUri, STOMP_SCHEMES } from './uri';

/** Never logged, whatever the connection did (it masks them already). */
const SECRET = new Set(['login', 'passcode', 'password']);

function connectionOptions(s: BrokerSettings): StompConnectionOptions {
  const onConfirmed = s.onConfirmed;
  return {
    uri: s.uri,
    auth: s.auth,
    tls: s.tls,
    reconnect: s.reconnect,
    connectHeaders: s.connectHeaders === undefined ? undefined : { ...s.connectHeaders },
    type: s.type,
    heartBeat: s.heartBeat,
    connectTimeout: s.connectTimeout,
    receiptTimeout: s.receiptTimeout,
    flushTimeout: s.flushTimeout,
    disconnectTimeout: s.disconnectTimeout,
    maxHeaderLength: s.maxHeaderLength,
    maxHeaders: s.maxHeaders,
    debug: s.debug,
    onReceipt:
      onConfirmed === undefined
        ? undefined
        : (command, seconds) => {
            if (command === 'SEND') onConfirmed(seconds);
          },
    onEvent: s.onEvent,
  };
}

/** The log line of a debug event (`frame`, `io`, `debug`); none for the others. */
export function stompLogLine(event: { readonly type: string }): BrokerLogLine | undefined {
  const e = event as StompConnectionEvent;
  switch (e.type) {
    case 'frame': {
      const fields: Record<string, unknown> = { command: e.command, bodyLength: e.bodyLength };
      if (e.headers !== undefined) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(e.headers)) headers[k] = SECRET.has(k) ? '***' : v;
        fields.headers = headers;
      }
      if (e.body !== undefined) fields.body = e.truncated ? `${e.body}...` : e.body;
      return { level: 'debug', fields, message: e.direction === 'out' ? 'STOMP frame sent' : 'STOMP frame received' };
    }
    case 'io':
      return {
        level: 'debug',
        fields: { bytes: e.bytes },
        message: e.direction === 'out' ? 'STOMP bytes written' : 'STOMP bytes read',
      };
    case 'debug':
      return { level: 'debug', fields: {}, message: `STOMP ${e.what}: ${e.text}` };
    default:
      return undefined;
  }
}

export const STOMP_PROTOCOL: BrokerProtocol = {
  name: 'STOMP',
  schemes: STOMP_SCHEMES,
  parseUri: parseStompUri,
  ignores: [],
  incoming: (settings, incoming) =>
    new StompIncoming(connectionOptions(settings), {
      subscribe: incoming.subscribe,
      prefetch: incoming.prefetch,
      ack: incoming.ack,
      unsubscribe: incoming.unsubscribe,
    }),
  outgoing: (settings) => new StompOutgoing(connectionOptions(settings)),
  logLine: stompLogLine,
};
