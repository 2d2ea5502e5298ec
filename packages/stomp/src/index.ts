export type {
  StompConnectionEvent,
  StompConnectionOptions,
  StompReceived,
  StompReconnectOptions,
  StompTlsOptions,
} from './connection';
export {
  DEBUG_BODY_MAX,
  detectBrokerType,
  parseCredential,
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
  messageToFrame,
  RESERVED_SEND_HEADERS,
  StompIncoming,
  StompOutgoing,
} from './modules';
export type { BrokerServer, BrokerUri } from './uri';
export { BrokerUriError, parseBrokerUri } from './uri';
