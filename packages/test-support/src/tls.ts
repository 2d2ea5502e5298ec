import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import { run } from './util';

/** The client certificate's CN (RabbitMQ maps it to a user of that name). */
export const CLIENT_CN = 'msgbricks-client';

export interface TlsMaterial {
  /** PEM of the throwaway CA that signed both certificates. */
  caFile: string;
  /** The broker's certificate (CN=localhost, SAN IP:127.0.0.1, DNS:localhost). */
  certFile: string;
  /** The broker's private key. */
  keyFile: string;
  /** The client certificate, CN=msgbricks-client. */
  clientCertFile: string;
  /** The client's private key. */
  clientKeyFile: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN=msgbricks-client), in `dir`. */
export function makeTlsMaterial(dir: string): TlsMaterial {
  fs.mkdirSync(dir, { recursive: true });
  const days = '30';
  run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      days,
      '-subj',
      '/CN=msgbricks-test-ca',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  fs.writeFileSync(
    path.join(dir, 'client.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', CLIENT_CN],
  ]) {
    run(
      'openssl',
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
      dir,
    );
    const sign = ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'];
    run('openssl', [...sign, '-out', `${name}.pem`, '-days', days, '-extfile', `${name}.ext`], dir);
  }
  return {
    caFile: path.join(dir, 'ca.pem'),
    certFile: path.join(dir, 'server.pem'),
    keyFile: path.join(dir, 'server.key'),
    clientCertFile: path.join(dir, 'client.pem'),
    clientKeyFile: path.join(dir, 'client.key'),
  };
}

/**
 * Options for node:tls (and stompit's `ssl` connect options) that present the client certificate and trust the CA
 * of a broker started with `tls`.
 */
export function clientTlsOptions(broker: { name: string; tls?: TlsMaterial | undefined }): tls.ConnectionOptions {
  if (!broker.tls) throw new Error(`${broker.name} was started without tls`);
  return {
    ca: fs.readFileSync(broker.tls.caFile),
    cert: fs.readFileSync(broker.tls.clientCertFile),
    key: fs.readFileSync(broker.tls.clientKeyFile),
    servername: 'localhost',
  };
}
