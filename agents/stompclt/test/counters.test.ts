// One source for counts (issue 11, item 9): the final log line said deadLettered=0 while the metric said 11, because
// the metric counted every write to the dead-letter spool (corrupt elements included) and the log only the pipeline's.
// Now the log summary, --statistics and the metrics read one counts object; this run has both kinds of dead letters.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { DQS } from '@msgbricks/message';
import { fill, freePort, readAll, scrapeMetrics, start, useTempDir, waitFor } from './helpers';

jest.setTimeout(60_000);
const dir = useTempDir();

const q = (name: string) => `path=${join(dir.path, name)} type=DQS`;

const metric = (text: string, name: string) => Number(new RegExp(`^stompclt_${name} (\\d+)$`, 'm').exec(text)?.[1]);

test('stompclt - counters: the log summary, --statistics and the metrics agree after a run with dead-lettered messages', async () => {
  const a = join(dir.path, 'a');
  // 20 messages: the callback fails on 3 (n = 0, 7, 14: dead-lettered by the pipeline), drops 4 (n = 1, 6, 11,
  // 16) and passes the other 13; 2 corrupt elements (dead-lettered by the incoming spool, never received).
  await fill(a, 10, 'first');
  for (let i = 0; i < 2; i++) await new DQS(a).add(Buffer.from(`not a serialized message ${i}`));
  await fill(a, 10, 'second');
  const callback = join(dir.path, 'cb.js');
  fs.writeFileSync(
    callback,
    `exports.check = (m) => {
      const i = Number(m.header.n) + (m.body.toString().startsWith('second') ? 10 : 0);
      if (i % 7 === 0) throw new Error('no ' + i);
      if (i % 5 === 1) return 'dropped ' + i;
      return m;
    };`,
  );
  const port = await freePort();
  const run = start(
    [
      '--incoming-queue',
      q('a'),
      '--outgoing-queue',
      q('b'),
      '--dead-letter-queue',
      q('dead'),
      '--callback-path',
      callback,
      '--remove',
      '--loop',
      '--statistics',
      '--metrics-port',
      String(port),
    ],
    dir.path,
  );
  let text = '';
  await waitFor('the whole spool acked or dead-lettered', async () => {
    text = await scrapeMetrics(port).catch(() => '');
    return metric(text, 'messages_acked_total') === 20 && metric(text, 'messages_dead_lettered_total') === 5;
  });
  run.child.kill('SIGINT');
  const r = await run.done;
  expect(r.status).toBe(0);

  // On disk: 13 sent, 5 dead letters (3 refused by the callback, 2 corrupt elements), nothing left.
  expect(await readAll(join(dir.path, 'b'), 'DQS')).toHaveLength(13);
  const dead = await readAll(join(dir.path, 'dead'), 'DQS');
  expect(dead.map((m) => (m.header['x-msgbricks-dead-letter-reason'] ?? '').replace(/:.*/s, '')).sort()).toEqual([
    'callback failed',
    'callback failed',
    'callback failed',
    'corrupt element',
    'corrupt element',
  ]);
  expect(await new DQS(a).count()).toBe(0);

  const summary = /transfer finished (.*)$/m.exec(r.err)?.[1] ?? '';
  const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(summary)?.[1]);
  const stat = (label: string) => Number(new RegExp(`\\b${label}: (\\d+)`).exec(r.out)?.[1]);
  const expected = { received: 20, sent: 13, dropped: 4, deadLettered: 5, released: 0, acked: 20, skipped: 0, spoolFaults: 0 };
  expect({
    received: field('received'),
    sent: field('sent'),
    dropped: field('dropped'),
    deadLettered: field('deadLettered'),
    released: field('released'),
    acked: field('acked'),
    skipped: field('skipped'),
    spoolFaults: field('spoolFaults'),
  }).toEqual(expected);
  expect({
    received: stat('count'),
    sent: stat('sent'),
    dropped: stat('dropped'),
    deadLettered: stat('dead-lettered'),
    released: stat('released'),
    acked: stat('acked'),
    skipped: stat('skipped elements'),
    spoolFaults: stat('spool faults'),
  }).toEqual(expected);
  expect({
    received: metric(text, 'messages_in_total'),
    sent: metric(text, 'messages_out_total'),
    dropped: metric(text, 'messages_dropped_total'),
    deadLettered: metric(text, 'messages_dead_lettered_total'),
    released: metric(text, 'messages_released_total'),
    acked: metric(text, 'messages_acked_total'),
    skipped: metric(text, 'elements_skipped_total'),
    spoolFaults: metric(text, 'spool_faults_total'),
  }).toEqual(expected);
  expect(metric(text, 'messages_pending')).toBe(0);
});
