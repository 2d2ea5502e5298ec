/**
 * QueueSimple's on-disk conventions and the bounds of the queues' retry loops, in one place for the main thread
 * (simple.ts, queue.ts) and the helper thread (offload-ops.ts): python-dirq's names, which other programs rely on.
 */

/** The lock of element `dir/name` is the hard link `dir/name.lck`. */
export const LOCK_SUFFIX = '.lck';
/** An element being written is `dir/name.tmp` until it is published under `dir/name`. */
export const TEMP_SUFFIX = '.tmp';
/** Attempts of a loop that takes a new name after a collision (or retries after a concurrent change) before it gives up. */
export const MAX_TRIES = 100;
/** From this batch size on, one syncfs beats an fdatasync per file (about 0.4 ms each on ext4). */
export const SYNCFS_BATCH = 32;
