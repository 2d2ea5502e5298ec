describe('message codecs', () => {
  afterEach(() => {
    jest.dontMock('lz4-napi');
    jest.resetModules();
  });

  test('message codecs - a native codec that cannot load fails alone, with a clear error', () => {
    jest.isolateModules(() => {
      jest.doMock('lz4-napi', () => {
        throw new Error('no prebuilt binary for this platform');
      });
      const { Message } = require('../src/message') as typeof import('../src/message');
      const { availableCodecs } = require('../src/codecs') as typeof import('../src/codecs');
      const m = new Message({ body: 'x'.repeat(1000) });
      expect(() => m.serialize({ compression: 'lz4' })).toThrow(
        expect.objectContaining({
          code: 'ERR_MESSAGE_CODEC_UNAVAILABLE',
          message: expect.stringMatching(/lz4 support is not installed: no prebuilt/),
        }),
      );
      const lz4Body = '{"body": "6AcAAB94AQDs//////////8CUHh4eHh4", "encoding": "lz4+base64"}';
      expect(() => Message.deserialize(lz4Body)).toThrow(expect.objectContaining({ code: 'ERR_MESSAGE_CODEC_UNAVAILABLE' }));
      expect(Message.deserialize(m.serialize({ compression: 'zlib' })).equals(m)).toBe(true);
      expect(Message.deserialize(m.serialize({ compression: 'snappy' })).equals(m)).toBe(true);
      expect(availableCodecs()).toEqual(['zlib', 'snappy']);
    });
  });

  test('message codecs - every codec loads on this machine', () => {
    const { availableCodecs } = require('../src/codecs') as typeof import('../src/codecs');
    expect(availableCodecs()).toEqual(['zlib', 'lz4', 'snappy']);
  });
});
