import * as zlib from 'node:zlib';
import { MessageError } from './errors';

export type Compression = 'zlib' | 'lz4' | 'snappy';

interface Codec {
  compress(data: Buffer): Buffer;
  decompress(data: Buffer): Buffer;
}

interface Lz4Napi {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer): Buffer;
}
interface SnappyNative {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer, options: { asBuffer: true }): Buffer;
}

/** Decoding order of python-messaging, whatever the order of the tokens. */
export const DECOMPRESSION_ORDER: readonly Compression[] = ['lz4', 'snappy', 'zlib'];
export const COMPRESSIONS: readonly Compression[] = ['zlib', 'lz4', 'snappy'];

// Native codecs load on first use: a machine without one of them can still use the others.
const loaded = new Map<Compression, Codec | Error>();

function load(name: Compression): Codec {
  let codec = loaded.get(name);
  if (codec === undefined) {
    try {
      codec = make(name);
    } catch (err) {
      codec = err instanceof Error ? err : new Error(String(err));
    }
    loaded.set(name, codec);
  }
  if (codec instanceof Error) {
    throw new MessageError('ERR_MESSAGE_CODEC_UNAVAILABLE', `${name} support is not installed: ${codec.message}`, {
      cause: codec,
    });
  }
  return codec;
}

function make(name: Compression): Codec {
  switch (name) {
    case 'zlib':
      // Default level, as python's zlib.compress: the same stream byte for byte.
      return { compress: (d) => zlib.deflateSync(d), decompress: (d) => zlib.inflateSync(d) };
    case 'lz4': {
      // An LZ4 block behind a 4-byte little-endian uncompressed size: python lz4.block's and Perl
      // Compress::LZ4's framing, which lz4-napi's compressSync/uncompressSync use too.
      const lz4 = require('lz4-napi') as Lz4Napi;
      return {
        compress: (d) => lz4.compressSync(d),
        decompress: (d) => {
          // The declared size is trusted by the decoder, which allocates it first: a corrupt or hostile
          // body claiming 4 GB would take seconds and memory. LZ4 cannot expand more than 255 times.
          if (d.length < 4 || d.readUInt32LE(0) > (d.length - 4) * 255 + 16) throw new Error('invalid LZ4 size header');
          return lz4.uncompressSync(d);
        },
      };
    }
    case 'snappy': {
      const snappy = require('snappy') as SnappyNative;
      return { compress: (d) => snappy.compressSync(d), decompress: (d) => snappy.uncompressSync(d, { asBuffer: true }) };
    }
  }
}

export function isCompression(name: unknown): name is Compression {
  return typeof name === 'string' && (COMPRESSIONS as readonly string[]).includes(name);
}

export function compress(name: Compression, data: Buffer): Buffer {
  return load(name).compress(data);
}

export function decompress(name: Compression, data: Buffer): Buffer {
  const codec = load(name);
  try {
    return codec.decompress(data);
  } catch (err) {
    throw new MessageError('ERR_MESSAGE_CODEC', `corrupt ${name} body: ${(err as Error).message}`, { cause: err });
  }
}

/** The codecs that load on this machine. */
export function availableCodecs(): Compression[] {
  return COMPRESSIONS.filter((c) => {
    try {
      load(c);
      return true;
    } catch {
      return false;
    }
  });
}
