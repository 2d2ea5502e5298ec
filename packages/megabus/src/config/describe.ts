import type { FilterConfig } from '../filter';
import type { MegabusConfig } from './types';

const seconds = (ms: number) => ms / 1000;

/** The filter keys as the file says them (the top level's, a plugin's). */
function describeFilter(f: FilterConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.selector !== undefined) out.selector = f.selector;
  if (f.hostgroupSelector !== undefined) out.hostgroup_selector = f.hostgroupSelector;
  if (f.hostSelector !== undefined) out.host_selector = f.hostSelector;
  out.use_broker_filtering = f.useBrokerFiltering;
  return out;
}

/**
 * A configuration as its file would say it, every default filled in and the password masked: the keys and units of
 * the reference (seconds), for `megabusclt check` and logs.
 */
export function describeConfig(c: MegabusConfig): Record<string, unknown> {
  const b = c.brokers;
  const out: Record<string, unknown> = {};
  if (b.alias !== undefined) out.server = b.alias;
  if (b.servers !== undefined)
    out.servers = b.servers.map((s) =>
      s.port === undefined ? s.host : `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`,
    );
  Object.assign(out, {
    port: b.port,
    protocol: c.protocol,
    use_multiple_brokers: b.multiple,
    tls: c.tls,
    auth_method: c.auth.method,
  });
  if (c.auth.method === 'password') Object.assign(out, { user: c.auth.user, password: '***' });
  else {
    Object.assign(out, { cert: c.auth.cert, key: c.auth.key });
    if (c.auth.passphrase !== undefined) out.key_passphrase = '***';
  }
  if (c.tls) {
    if (c.tlsOptions.ca !== undefined) out.ca = c.tlsOptions.ca;
    out.verify = c.tlsOptions.verify;
    if (c.tlsOptions.servername !== undefined) out.servername = c.tlsOptions.servername;
  }
  if (c.vhost !== undefined) out.vhost = c.vhost;
  if (c.destination !== undefined) out.destination = c.destination;
  Object.assign(out, {
    resolve_interval: seconds(c.resolveInterval),
    connect_timeout: seconds(c.connectTimeout),
    receipt_timeout: seconds(c.receiptTimeout),
    max_reconnect_delay: seconds(c.maxReconnectDelay),
  });
  Object.assign(out, describeFilter(c.filter));
  const p = c.publisher;
  out.publisher = {
    ...(p.spool === undefined ? {} : { spool: p.spool }),
    send_to_all: p.sendToAll,
    reconnect_interval: seconds(p.reconnectInterval),
    persistent: p.persistent,
  };
  const k = c.consumer;
  out.consumer = {
    ...(k.destination === undefined ? {} : { destination: k.destination }),
    prefetch: k.prefetch,
    drain_quiet: seconds(k.drainQuiet),
    ...(k.spool === undefined ? {} : { spool: k.spool }),
  };
  if (c.plugins.length > 0 || c.metrics !== undefined) out.state_dir = c.stateDir;
  if (c.metrics !== undefined)
    out.metrics = `${c.metrics.host.includes(':') ? `[${c.metrics.host}]` : c.metrics.host}:${c.metrics.port}`;
  if (c.plugins.length > 0) {
    const plugins: Record<string, unknown> = {};
    for (const p of c.plugins) {
      plugins[p.name] = {
        destination: p.destination ?? k.destination ?? c.destination,
        max_attempts: p.maxAttempts,
        dead_letter: p.deadLetter,
        retry_delay: seconds(p.retryDelay),
        retry_delay_max: seconds(p.retryDelayMax),
        timeout: seconds(p.timeout),
        concurrency: p.concurrency,
        ...(p.onChange === undefined ? {} : { on_change: { ...p.onChange } }),
        ...(p.filter === undefined ? {} : describeFilter(p.filter)),
        actions: p.actions.map((a) => ({ ...a, timeout: a.timeout ?? seconds(p.timeout) })),
      };
    }
    out.plugins = plugins;
  }
  return out;
}
