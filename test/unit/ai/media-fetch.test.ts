import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchResultMedia, parseDataUrl, type ResultMediaError } from '../../../src/ai/media-fetch.ts';
import { WorkerCallError } from '../../../src/ai/worker-reply.ts';

function serverError(pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof WorkerCallError, `expected WorkerCallError, got ${String(err)}`);
    assert.equal(err.kind, 'server');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('parseDataUrl', () => {
  test('decodes a base64 PNG data URL as the runner writes it, with its media type', () => {
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    const media = parseDataUrl(`data:image/png;base64,${bytes.toString('base64')}`);
    assert.deepEqual(media, { data: bytes, contentType: 'image/png' });
  });

  test('decodes percent-encoded data byte by byte, including non-UTF-8 bytes and literal UTF-8', () => {
    assert.deepEqual(parseDataUrl('data:text/plain,hello%20world%21'), { data: Buffer.from('hello world!'), contentType: 'text/plain' });
    assert.deepEqual(parseDataUrl('data:application/octet-stream,%00%FF%fe').data, Buffer.from([0x00, 0xff, 0xfe]));
    assert.deepEqual(parseDataUrl('data:text/plain,caf%C3%A9 €').data, Buffer.from('café €'));
    assert.deepEqual(parseDataUrl('data:text/plain,100%').data, Buffer.from('100%'), 'a lone % stays');
  });

  test('defaults the media type to text/plain and drops parameters from it', () => {
    assert.equal(parseDataUrl('data:,abc').contentType, 'text/plain');
    assert.equal(parseDataUrl('data:;base64,YWJj').contentType, 'text/plain');
    assert.deepEqual(parseDataUrl('data:text/plain;charset=UTF-8;base64,YWJj'), { data: Buffer.from('abc'), contentType: 'text/plain' });
    assert.equal(parseDataUrl('DATA:Audio/WAV;BASE64,UklGRg==').contentType, 'audio/wav');
  });

  test('accepts base64 with whitespace, missing padding and percent-encoded characters', () => {
    assert.deepEqual(parseDataUrl('data:application/octet-stream;base64,YW Jj\nZA').data, Buffer.from('abcd'));
    assert.deepEqual(parseDataUrl('data:application/octet-stream;base64,%2B%2F8%3D').data, Buffer.from([0xfb, 0xff]));
  });

  test('rejects malformed data URLs as server failures', () => {
    assert.throws(() => parseDataUrl('data:image/png;base64'), serverError(/no comma/));
    assert.throws(() => parseDataUrl('data:image/png;base64,abc$'), serverError(/invalid base64/));
    assert.throws(() => parseDataUrl('data:image/png;base64,a'), serverError(/invalid base64/));
    assert.throws(() => parseDataUrl('data:image/png;base64,YQ==YQ=='), serverError(/invalid base64/));
    assert.throws(() => parseDataUrl('data:not a type;base64,YQ=='), serverError(/invalid media type/));
    assert.throws(() => parseDataUrl('http://example.com/x.png'), serverError(/not a data: URL/));
  });

  test('accepts exactly the RFC 4648 base64 alphabet with padding only at the end (URL-safe, stray and non-ASCII characters refused)', () => {
    for (const bad of ['YW-j', 'YW_j', 'YWJ*', 'YW\u00e9j', 'YWJjZA=Q', '=YWJ', 'YWJjZ===']) {
      assert.throws(() => parseDataUrl(`data:application/octet-stream;base64,${bad}`), serverError(/invalid base64/), JSON.stringify(bad));
    }
    // Every string of up to 6 characters over a small alphabet: accepted exactly when it is
    // the alphabet with at most two '=' at its end and a length RFC 4648 allows, with Node's bytes.
    const alphabet = ['Q', 'U', 'J', '+', '/', '=', '-', '*'];
    const strict = /^[A-Za-z0-9+/]*={0,2}$/;
    let accepted = 0;
    const visit = (text: string): void => {
      const unpadded = text.replace(/=+$/, '').length;
      const valid = strict.test(text) && unpadded % 4 !== 1 && (unpadded === text.length || text.length % 4 === 0);
      if (valid) {
        accepted += 1;
        assert.deepEqual(parseDataUrl(`data:;base64,${text}`).data, Buffer.from(text, 'base64'), JSON.stringify(text));
      } else {
        assert.throws(() => parseDataUrl(`data:;base64,${text}`), serverError(/invalid base64/), JSON.stringify(text));
      }
      if (text.length < 6) for (const c of alphabet) visit(text + c);
    };
    visit('');
    assert.ok(accepted > 1000);
  });

  test('enforces maxBytes on the decoded size, for base64 and percent-encoded data', () => {
    const b64 = `data:application/octet-stream;base64,${Buffer.alloc(100).toString('base64')}`;
    assert.equal(parseDataUrl(b64, 100).data.length, 100);
    assert.throws(() => parseDataUrl(b64, 99), serverError(/larger than 99 bytes/));
    assert.equal(parseDataUrl('data:,%41%42%43', 3).data.toString(), 'ABC', '9 characters decode to 3 bytes');
    assert.throws(() => parseDataUrl('data:,%41%42%43%44', 3), serverError(/larger than 3 bytes/));
  });
});

describe('fetchResultMedia without a network', () => {
  test('returns the bytes of a data: URL and applies maxBytes to it', async () => {
    const media = await fetchResultMedia('data:audio/wav;base64,UklGRgAAAABXQVZF', { timeoutMs: 1_000, maxBytes: 100 });
    assert.equal(media.contentType, 'audio/wav');
    assert.equal(media.data.toString('latin1'), 'RIFF\0\0\0\0WAVE');
    await assert.rejects(fetchResultMedia('data:audio/wav;base64,UklGRgAAAABXQVZF', { timeoutMs: 1_000, maxBytes: 11 }), serverError(/larger than 11 bytes/));
  });

  test('refuses a relative URL without a worker base URL, and schemes other than http(s)', async () => {
    await assert.rejects(fetchResultMedia('/stream/abc/0.png', { timeoutMs: 1_000, maxBytes: 100 }), serverError(/relative/));
    for (const url of ['file:///etc/passwd', 'gopher://127.0.0.1:6379/_INFO', 'ftp://127.0.0.1/x.png', 'dict://127.0.0.1:11211/stats', 'javascript:alert(1)']) {
      const scheme = new URL(url).protocol;
      await assert.rejects(fetchResultMedia(url, { timeoutMs: 1_000, maxBytes: 100, baseUrl: 'http://127.0.0.1:1' }),
        (err) => serverError(new RegExp(`scheme ${scheme} is not allowed`))(err) && (err as ResultMediaError).refused);
    }
    await assert.rejects(fetchResultMedia('http://u:p@127.0.0.1:1/x.png', { timeoutMs: 1_000, maxBytes: 100, baseUrl: 'http://127.0.0.1:1' }), serverError(/credentials/));
  });

  test('refuses http(s) URLs outside the worker origin (host, port, scheme) and any http(s) URL without a worker', async () => {
    const baseUrl = 'http://10.0.0.5:8000/runner';
    for (const url of ['http://127.0.0.1:6379/', 'http://10.0.0.5:8001/x.png', 'https://10.0.0.5:8000/x.png', 'http://10.0.0.5.nip.io:8000/x.png', '//169.254.169.254/latest/meta-data/']) {
      await assert.rejects(fetchResultMedia(url, { timeoutMs: 1_000, maxBytes: 100, baseUrl }), serverError(/another origin than the worker's/), url);
    }
    await assert.rejects(fetchResultMedia('http://10.0.0.5:8000/x.png', { timeoutMs: 1_000, maxBytes: 100 }), serverError(/another origin/));
  });
});
