import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectMedia, shape, type MediaFetcher } from '../../../src/ai/result-media.ts';
import { parseDataUrl } from '../../../src/ai/media-fetch.ts';

const worker = { url: 'http://127.0.0.1:9' };
const dataUrl = `data:image/png;base64,${Buffer.from('not really a png').toString('base64')}`;

/** Counts AbortSignal.timeout calls while `run` runs (the real function still makes each signal). */
async function countingTimeouts<T>(run: () => Promise<T>): Promise<{ result: T; made: number }> {
  const original = AbortSignal.timeout.bind(AbortSignal);
  let made = 0;
  AbortSignal.timeout = (ms: number) => { made++; return original(ms); };
  try {
    return { result: await run(), made };
  } finally {
    AbortSignal.timeout = original;
  }
}

test('an answer of data: URLs makes no deadline timer (the signal is made only when a fetch reads it)', async () => {
  const fetchMedia: MediaFetcher = async (url) => parseDataUrl(url, 1024);
  const { result, made } = await countingTimeouts(() => collectMedia(fetchMedia, 'text-to-image', { images: [{ url: dataUrl }, { url: dataUrl }] }, worker, 30_000));
  assert.equal(result.length, 2);
  assert.equal(result[0]![0]!.contentType, 'image/png');
  assert.equal(made, 0);
});

test('a fetch that reads the signal gets the step\'s deadline, one signal for every media of the answer', async () => {
  const signals: AbortSignal[] = [];
  const fetchMedia: MediaFetcher = async (url, _worker, limits) => {
    signals.push(limits.signal);
    await new Promise((resolve) => limits.signal.addEventListener('abort', resolve, { once: true }));
    return parseDataUrl(dataUrl, 1024);
  };
  const started = Date.now();
  // AbortSignal.timeout's timer does not keep the process alive; this one does meanwhile.
  const keepAlive = setTimeout(() => undefined, 5_000);
  const { made } = await countingTimeouts(() => collectMedia(fetchMedia, 'text-to-image', { images: [{ url: 'http://127.0.0.1:9/a.png' }, { url: 'http://127.0.0.1:9/b.png' }] }, worker, 150))
    .finally(() => clearTimeout(keepAlive));
  const elapsed = Date.now() - started;
  assert.equal(made, 1);
  assert.equal(signals.length, 2);
  assert.equal(signals[0], signals[1]);
  assert.ok(signals[0]!.aborted);
  assert.ok(elapsed >= 140, `the deadline fired after ${elapsed} ms`);
});

test('image-to-video: each MP4 is assembled in a scratch file of the given directory (no directory made per request), stored, then removed, also when assembling fails', async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'mg-i2v-scratch-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  let n = 0;
  const outputs: string[] = [];
  const stored = new Map<string, Buffer>();
  let fail = false;
  const hosting = {
    publicUrl: 'http://gw',
    scratchFile: async (ext: string) => join(scratch, `upload-1-${n++}${ext}`),
    framesToMp4: async (frames: Buffer[], _fps: number, outputPath: string) => {
      outputs.push(outputPath);
      writeFileSync(outputPath, Buffer.concat([Buffer.from('mp4:'), ...frames]));
      if (fail) throw new Error('ffmpeg failed');
    },
    results: {
      putBytes: async (key: string, data: Uint8Array) => { stored.set(key, Buffer.from(data)); return { sizeBytes: data.length }; },
      getStream: async () => undefined,
    },
  };
  const frame = (s: string) => ({ data: Buffer.from(s), contentType: 'image/png' });
  const reply = { frames: [[{ url: 'a', seed: 3 }], [{ url: 'b', nsfw: true }]] };
  const shaped = await shape(hosting, 'image-to-video', 'ai-000000000000000000000001', reply, [[frame('x')], [frame('y'), frame('z')]], { fps: 8 });
  assert.deepEqual(shaped.body, { images: [
    { url: 'http://gw/stream/ai-000000000000000000000001/0.mp4', seed: 3, nsfw: false },
    { url: 'http://gw/stream/ai-000000000000000000000001/1.mp4', seed: 0, nsfw: true },
  ] });
  assert.deepEqual(shaped.keys, ['ai-000000000000000000000001/0.mp4', 'ai-000000000000000000000001/1.mp4'], 'the keys stored, for the expiry index');
  assert.deepEqual(outputs, [join(scratch, 'upload-1-0.mp4'), join(scratch, 'upload-1-1.mp4')]);
  assert.equal(stored.get('ai-000000000000000000000001/1.mp4')?.toString(), 'mp4:yz');
  assert.deepEqual(readdirSync(scratch), [], 'the scratch files are removed once stored');

  fail = true;
  await assert.rejects(shape(hosting, 'image-to-video', 'ai-000000000000000000000002', reply, [[frame('x')], [frame('y')]], {}), /ffmpeg failed/);
  assert.equal(outputs.length, 3);
  assert.equal(existsSync(outputs[2]!), false, 'a partial MP4 is removed when assembling fails');
  assert.deepEqual(readdirSync(scratch), []);
});

test('text-to-image: each image is stored under <requestID>/<n>.<ext> and its key returned beside the body; an llm answer stores none', async () => {
  const stored = new Map<string, Buffer>();
  const hosting = {
    publicUrl: 'http://gw',
    scratchFile: async () => { throw new Error('no scratch file for images'); },
    framesToMp4: async () => { throw new Error('no MP4 for images'); },
    results: {
      putBytes: async (key: string, data: Uint8Array) => { stored.set(key, Buffer.from(data)); return { sizeBytes: data.length }; },
      getStream: async () => undefined,
    },
  };
  const id = 'ai-00000000000000000000000a';
  const shaped = await shape(hosting, 'text-to-image', id, { images: [{ url: 'a', seed: 1 }, { url: 'b' }] },
    [[{ data: Buffer.from('p'), contentType: 'image/png' }], [{ data: Buffer.from('j'), contentType: 'image/jpeg' }]], {});
  assert.deepEqual(shaped.body, { images: [
    { url: `http://gw/stream/${id}/0.png`, seed: 1, nsfw: false },
    { url: `http://gw/stream/${id}/1.jpg`, seed: 0, nsfw: false },
  ] });
  assert.deepEqual([...shaped.keys].sort(), [`${id}/0.png`, `${id}/1.jpg`]);
  assert.deepEqual([...stored.keys()].sort(), [...shaped.keys].sort(), 'the keys returned are those stored');

  const llm = await shape(hosting, 'llm', 'ai-00000000000000000000000b', { choices: [] }, [], {});
  assert.deepEqual(llm, { body: { choices: [] }, keys: [] });
});
