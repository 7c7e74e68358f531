import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaStreamError, saveWav, wavHeader, type AudioFrame } from '../../../src/frames/index.ts';

const frame = (sampleRate: number, channels: number, samples: number, fill = 1): AudioFrame => ({
  kind: 'audio', sampleRate, channels, samplesPerChannel: samples, format: 's16', data: Buffer.alloc(samples * channels * 2, fill), pts: 0, timeBase: { num: 1, den: sampleRate },
});

test('wavHeader is the canonical 44-byte PCM header (RIFF size, fmt chunk, byte rate, block align, data size)', () => {
  const h = wavHeader(48000, 2, 1000);
  assert.equal(h.length, 44);
  assert.equal(h.toString('ascii', 0, 4), 'RIFF');
  assert.equal(h.readUInt32LE(4), 1036);
  assert.equal(h.toString('ascii', 8, 16), 'WAVEfmt ');
  assert.deepEqual([h.readUInt32LE(16), h.readUInt16LE(20), h.readUInt16LE(22), h.readUInt32LE(24), h.readUInt32LE(28), h.readUInt16LE(32), h.readUInt16LE(34)], [16, 1, 2, 48000, 192000, 4, 16]);
  assert.equal(h.toString('ascii', 36, 40), 'data');
  assert.equal(h.readUInt32LE(40), 1000);
});

test('saveWav cuts the last frame at maxSeconds and writes the sizes of what it wrote', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wav-unit-'));
  try {
    const path = join(dir, 'a.wav');
    async function* frames() { for (;;) yield frame(16000, 1, 320); }
    const saved = await saveWav(path, frames(), { maxSeconds: 0.05 });
    assert.deepEqual(saved, { samples: 800, sampleRate: 16000, channels: 1, durationSeconds: 0.05 });
    const bytes = await readFile(path);
    assert.equal(bytes.length, 44 + 1600);
    assert.equal(bytes.readUInt32LE(40), 1600);
    assert.equal(bytes.readUInt32LE(24), 16000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('saveWav removes the file and rethrows when the source fails or the format changes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wav-unit-'));
  try {
    const path = join(dir, 'b.wav');
    async function* failing() {
      yield frame(48000, 2, 960);
      throw new MediaStreamError('MEDIA_FAILED', 'ffmpeg exited with code 1');
    }
    await assert.rejects(saveWav(path, failing()), (e: unknown) => e instanceof MediaStreamError && e.code === 'MEDIA_FAILED');
    assert.equal(existsSync(path), false);
    async function* changing() {
      yield frame(48000, 2, 960);
      yield frame(44100, 2, 882);
    }
    await assert.rejects(saveWav(path, changing()), RangeError);
    assert.equal(existsSync(path), false);
    await assert.rejects(saveWav(path, changing(), { maxSeconds: 0 }), RangeError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
