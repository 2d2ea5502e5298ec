export { run } from './cli';
export type { Program } from './program';
export { AMQPCLT, STOMPCLT } from './program';
