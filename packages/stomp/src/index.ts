export type {
  StompConnectionEvent,
  StompConnectionOptions,
  StompReceived,
  StompReconnectOptions,
  StompTlsOptions,
} from './connection';
export {
  detectBrokerType,
  parseCredential,
  prefetchHeader,
  StompBrokerError,
  StompConnectError,
  StompConnection,
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
