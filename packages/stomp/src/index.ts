export type {
  StompConnectionEvent,
  StompConnectionOptions,
  StompReceived,
  StompReconnectOptions,
} from './connection';
export {
  DEBUG_BODY_MAX,
  detectBrokerType,
  prefetchHeader,
  STOMP_DEBUG_WORDS,
  StompBrokerError,
  StompConnectError,
  StompConnection,
  StompFlushError,
} from './connection';
export type { StompIncomingOptions, StompOutgoingOptions } from './modules';
export {
  frameToMessage,
  isTextContentType,
  KNOWN_DESTINATIONS_MAX,
  messageToFrame,
  RESERVED_SEND_HEADERS,
  StompIncoming,
  StompOutgoing,
} from './modules';
export { STOMP_PROTOCOL, stompLogLine } from './protocol';
export type { StompUri } from './uri';
export { parseStompUri, STOMP_SCHEMES, STOMP_URI } from './uri';
