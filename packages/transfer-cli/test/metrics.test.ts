import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counters, Histogram, serveMetrics } from '../src/metrics';

describe('transfer-cli metrics', () => {
  test('metrics - the histogram counts per bucket and exposes cumulative buckets, sum and count', () => {
    const h = new Histogram([0.01, 0.1, 1]);
    for (const v of [0.005, 0.01, 0.02, 0.5, 3]) h.observe(v);
    expect(h.lines('x')).toEqual([
      'x_bucket{le="0.01"} 2',
      'x_bucket{le="0.1"} 3',
      'x_bucket{le="1"} 4',
      'x_bucket{le="+Inf"} 5',
      `x_sum ${0.005 + 0.01 + 0.02 + 0.5 + 3}`,
      'x_count 5',
    ]);
  });

  test('metrics - receipt latency and reconnects per side, named after the program', () => {
    const c = new Counters();
    c.receipt(0.0007);
    c.receipt(0.2);
    c.reconnected('outgoing');
    c.reconnected('outgoing');
    const text = c.prometheus();
    expect(text).toMatch(/^# TYPE stompclt_receipt_latency_seconds histogram$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.0005"\} 0$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.001"\} 1$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="0\.25"\} 2$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_bucket\{le="\+Inf"\} 2$/m);
    expect(text).toMatch(/^stompclt_receipt_latency_seconds_count 2$/m);
    expect(text).toMatch(/^# TYPE stompclt_reconnects_total counter$/m);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="incoming"\} 0$/m);
    expect(text).toMatch(/^stompclt_reconnects_total\{side="outgoing"\} 2$/m);
  });

  test('metrics - the server listens on 127.0.0.1 unless told otherwise', async () => {
    const server = await serveMetrics(0, new Counters());
    try {
      const a = server.address() as AddressInfo;
      expect(a.address).toBe('127.0.0.1');
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: a.port, path: '/metrics' }, (res) => {
            let b = '';
            res.on('data', (d: Buffer) => {
              b += d.toString();
            });
            res.on('end', () => resolve(b));
          })
          .on('error', reject);
      });
      expect(body).toMatch(/^stompclt_messages_in_total 0$/m);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const any = await serveMetrics(0, new Counters(), '0.0.0.0');
    expect((any.address() as AddressInfo).address).toBe('0.0.0.0');
    await new Promise((r) => any.close(r));
  });
});
