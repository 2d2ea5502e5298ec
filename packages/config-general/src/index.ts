export type { ConfigBlock, ConfigGeneralOptions, ConfigNode, ConfigScalar } from './configgeneral';
export { configToPlain, parseConfigGeneral, parseConfigGeneralFile, readConfigFile } from './configgeneral';
export type { ConfigProblem, SourceLocation } from './errors';
export { ConfigError, formatLocation, formatProblem } from './errors';
export type { Tree } from './tree';
export { fromConfigGeneral, parseYamlLike, readTree } from './tree';
