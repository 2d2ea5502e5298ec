export type {
  ConfigBlock,
  ConfigGeneralOptions,
  ConfigNode,
  ConfigProblem,
  ConfigScalar,
  SourceLocation,
} from '@msgbricks/config-general';
export { ConfigError, configToPlain, formatProblem, parseConfigGeneral, parseConfigGeneralFile } from '@msgbricks/config-general';
export { run } from './cli';
export type { LoadedOptions, LoadOptionsInput } from './config/load';
export { loadOptions } from './config/load';
export type { AgentOptions, OptionSpec, OptionType, QueueSpec, ReconnectOptions, StringMap } from './config/schema';
export { OPTION_SCHEMA } from './config/schema';
export { AlreadyRunningError } from './errors';
export { keepYoungGenerationSmall } from './heap';
export type { SpoolLock } from './lock';
export { lockSpool } from './lock';
export type { Logger, LoggerOptions } from './logger';
export { makeLogger, message, out } from './logger';
export type { Registry } from './metrics';
export { newRegistry, serveMetrics } from './metrics';
export type { Program } from './program';
export { AMQPCLT, STOMPCLT, setProgram } from './program';
export { PROTOCOLS } from './protocols';
