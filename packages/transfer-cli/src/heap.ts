import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at its initial size (a 1 MB semi-space) for the life of the command.
 *
 * Why: a transfer allocates a steady stream of short-lived objects per message, and V8 answers by doubling the young
 * generation up to 2 x 16 MB, which then stays committed: with a window of 1000 stompclt's peak RSS was 122-136 MB, of
 * which 32 MB young generation, for 12-18 MB of live heap. At its initial size the young generation is scavenged more
 * often, each time with as little to copy (what is in flight), and the measured CPU per message did not change
 * (docs/benchmarks.md). Only this growth flag can still act once the process is running: `--max-semi-space-size`
 * is read when the heap is set up, before any of our code runs.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
