/**
 * One broker of the alias as the agent's broker modules see it: the protocol descriptor (STOMP or AMQP 1.0) and the
 * BrokerSettings of an endpoint, made from the Megabus configuration. Nothing protocol-specific lives in Megabus.
 */
import type { BrokerProtocol, BrokerReconnectOptions, BrokerSettings, Credential } from '@msgbricks/agent';
import { AMQP_PROTOCOL } from '@msgbricks/amqp';
import { STOMP_PROTOCOL } from '@msgbricks/stomp';
import type { MegabusConfig } from './config/types';
import type { Endpoint } from './resolver';

export function protocolOf(config: MegabusConfig): BrokerProtocol {
  return config.protocol === 'amqp' ? AMQP_PROTOCOL : STOMP_PROTOCOL;
}

/** The URI of one broker: the protocol's scheme (TLS or not) and the endpoint. */
export function brokerUri(config: MegabusConfig, e: Endpoint): string {
  const scheme = config.protocol === 'amqp' ? (config.tls ? 'amqps' : 'amqp') : config.tls ? 'stomp+ssl' : 'stomp';
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  const vhost = config.protocol === 'amqp' && config.vhost !== undefined ? `/${encodeURIComponent(config.vhost)}` : '';
  return `${scheme}://${host}:${e.port}${vhost}`;
}

function credentials(config: MegabusConfig): Credential[] {
  const a = config.auth;
  if (a.method === 'password') return [{ scheme: 'plain', name: a.user, pass: a.password }];
  const c: Record<string, string> = { scheme: 'x509', cert: a.cert, key: a.key };
  if (a.passphrase !== undefined) c.pass = a.passphrase;
  return [c as Credential];
}

/** The settings of one broker connection. */
export function brokerSettings(
  config: MegabusConfig,
  e: Endpoint,
  reconnect: BrokerReconnectOptions,
  onEvent?: (event: { readonly type: string }) => void,
): BrokerSettings {
  const t = config.tlsOptions;
  return {
    uri: brokerUri(config, e),
    auth: credentials(config),
    tls: config.tls
      ? {
          ca: t.ca,
          verify: t.verify,
          // Brokers of an alias are reached by address: their certificate is checked against the alias's name.
          servername: t.servername ?? (config.brokers.multiple ? config.brokers.alias : undefined),
        }
      : undefined,
    reconnect,
    connectTimeout: config.connectTimeout,
    receiptTimeout: config.receiptTimeout,
    connectHeaders: config.protocol === 'stomp' && config.vhost !== undefined ? { host: config.vhost } : undefined,
    onEvent,
  };
}
