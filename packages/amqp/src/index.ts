export type {
  AmqpConnectionEvent,
  AmqpConnectionOptions,
  AmqpConnectionWatcher,
  AmqpReconnectOptions,
} from './connection';
export { AmqpConnection, detectAmqpBrokerType } from './connection';
export { AmqpAuthError, AmqpBrokerError, AmqpConnectError, AmqpSubscribeError } from './errors';
export type { AmqpIncomingOptions, AmqpSubscription } from './incoming';
export { AmqpIncoming, parseSubscription } from './incoming';
export type { MessageToAmqpOptions } from './mapping';
export {
  amqpToMessage,
  BODY_TYPE_HEADER,
  DELIVERY_COUNT_HEADER,
  isTextContentType,
  messageToAmqp,
  RESERVED_HEADERS,
  TEXT_PLAIN,
} from './mapping';
export type { AmqpOutgoingOptions } from './outgoing';
export { AmqpOutgoing } from './outgoing';
export { AMQP_PROTOCOL } from './protocol';
export type { AmqpServer, AmqpUri } from './uri';
export { AMQP_SCHEMES, AMQP_URI, parseAmqpUri } from './uri';
