export { run } from './cli';
export type { Registry } from './metrics';
export { newRegistry, serveMetrics } from './metrics';
export type { Program } from './program';
export { AMQPCLT, STOMPCLT } from './program';
