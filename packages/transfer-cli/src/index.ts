export { run } from './cli';
export { Registry, serveMetrics } from './metrics';
export type { Program } from './program';
export { AMQPCLT, STOMPCLT } from './program';
