export { brokerUri } from './brokers';
export type { ConfigSource } from './common';
export { describeConfig } from './config/describe';
export type { LoadConfigOptions } from './config/load';
export { CONFIG_ENV, CONFIG_NAMES, findConfigFile, loadConfig, parseConfig, SYSTEM_CONFIG_DIR } from './config/load';
export type {
  BrokersConfig,
  ConsumerConfig,
  MegabusAuth,
  MegabusConfig,
  MegabusProtocol,
  PublisherConfig,
  TlsConfig,
} from './config/types';
export type { ConsumerBroker, ConsumerOptions, MessageContext, MessageHandler } from './consumer';
export { Consumer } from './consumer';
export { ClosedError, NoBrokerError, ResolveError } from './errors';
export type { MegabusEvent, MegabusEventListener } from './events';
export type { Filter, FilterConfig } from './filter';
export {
  buildFilter,
  expandPattern,
  FILTER_KEYS,
  filterSelector,
  HOST_HEADER,
  HOSTGROUP_HEADER,
  LIKE_ESCAPE,
  NO_FILTER,
  parseFilterKeys,
} from './filter';
export type { PublisherOptions } from './publisher';
export { Publisher } from './publisher';
export type { Endpoint, ResolvedAddress, Resolver } from './resolver';
export { dnsResolver, parseAddress, resolveBrokers, staticResolver } from './resolver';
