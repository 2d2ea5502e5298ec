export type { BaseOptions, PurgeOptions, PurgeResult, PurgeWarning } from './base';
export { QueueBase } from './base';
export {
  DataError,
  FileSystemError,
  InvalidNameError,
  InvalidOptionError,
  NoSuchElementError,
  NotLockedError,
  QueueError,
  RetryExhaustedError,
} from './errors';
export { NAME_RE } from './names';
export { QueueNull } from './null';
export type { ElementData, FieldType, FieldValue, QueueOptions } from './queue';
export { parseSchema, Queue } from './queue';
export type { SetEntry } from './set';
export { QueueSet } from './set';
export type { QueueSimpleOptions } from './simple';
export { QueueSimple } from './simple';
export { stringToTable, tableToString } from './table';
export type { WatchOptions } from './watch';
