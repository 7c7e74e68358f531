import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collectMedia, type MediaFetcher } from '../../../src/ai/result-media.ts';
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
