export { all as requirements, CHROMIUM, PYTHON, type Requirement, unmet } from '../requirements';
export type { Broker, BrokerKind, BrokerPorts, StartOptions, TlsBroker } from './brokers';
export { ensureInstalled, startActiveMQ, startRabbitMQ } from './brokers';
export type { StompConnection, StompConnectOptions, StompFrame } from './stomp';
export { stompConnect } from './stomp';
export type { TlsMaterial } from './tls';
export { CLIENT_CN, clientTlsOptions, makeTlsMaterial } from './tls';
export { backdate, layout, removeDir, tempDir, useTempDir } from './tmp';
export { freePorts, sleep } from './util';
