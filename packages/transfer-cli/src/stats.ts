import type { PipelineStats } from '@msgbricks/agent';

/**
 * stompclt's end-of-run statistics: the message count, the time between the first and the last
 * message, the rate in msg/s, the throughput in MB/s (10^6 bytes) and the average size, plus what
 * msgbricks adds (sent, dropped, filtered, dead-lettered, released, why it stopped).
 */
export function formatStatistics(s: PipelineStats): string {
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? s.received / seconds : 0;
  const mbs = seconds > 0 ? s.bytes / seconds / 1e6 : 0;
  const avg = s.received > 0 ? s.bytes / s.received : 0;
  return [
    `count: ${s.received} messages`,
    `elapsed: ${seconds.toFixed(3)} seconds`,
    `rate: ${rate.toFixed(1)} msg/s (${(rate / 1000).toFixed(3)} k msg/s)`,
    `throughput: ${mbs.toFixed(3)} MB/s`,
    `average size: ${avg.toFixed(0)} bytes`,
    `sent: ${s.sent}, dropped: ${s.dropped}, filtered: ${s.filtered}, dead-lettered: ${s.deadLettered}, released: ${s.released}, stopped by: ${s.stoppedBy}`,
  ].join('\n');
}

/** The last line of the statistics: what msgbricks counts beyond the messages (acks, spool elements and faults). */
export function formatSpoolStatistics(s: PipelineStats): string {
  return `acked: ${s.acked}, skipped elements: ${s.skipped}, spool faults: ${s.spoolFaults}`;
}
