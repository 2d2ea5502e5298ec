export type { Compression } from './codecs';
export { availableCodecs } from './codecs';
export { MessageError } from './errors';
export type { GeneratorOptions } from './generator';
export { Generator } from './generator';
export type { MessageInit, SerializeOptions } from './message';
export { Message } from './message';
export type { DQNOptions, DQSOptions, MessageQueue } from './queue';
export { DQN, DQS, MessageQueueNull, newMessageQueue, parseQueueSpec } from './queue';
