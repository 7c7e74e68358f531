/**
 * Metering end to end on in-process gateways (real redis-server, embedded transcoder, real
 * ffmpeg, a fake ai-runner worker), with prices of 1 credit per unit so credits equal units.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRedis, type TestRedis } from '../../helpers/redis-server.ts';
import { startFakeAiWorker, sineWav, type FakeAiWorker } from '../../helpers/fake-ai-worker.ts';
import { solidPng } from '../../helpers/png.ts';
import { clipWith2sGop } from '../../helpers/media.ts';
import { probeSegment, waitForEndedPlaylists } from '../../helpers/hls.ts';
import { loadConfig } from '../../../src/config/config.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { startApp, type RunningApp } from '../../../src/app.ts';
import { createRedis } from '../../../src/redis/connections.ts';
import { RedisLedger } from '../../../src/payments/ledger-store.ts';
import { Billing } from '../../../src/payments/billing.ts';
import { silentLogger } from '../../../src/log/logger.ts';

const run = promisify(execFile);
const LADDER = ['P240p30fps16x9', 'P144p30fps16x9'];
const UNIT_PRICE = { pricePerUnit: 1, pixelsPerUnit: 1 };
let redis: TestRedis;
let worker: FakeAiWorker;
let failing: FakeAiWorker;
let app: RunningApp;
let base: string;
let dataDir: string;
let segments: string[];

async function gateway(prefix: string, policy: 'end' | 'source-only'): Promise<{ app: RunningApp; base: string }> {
  const dir = mkdtempSync(join(dataDir, `${prefix}-`));
  const started = await startApp(loadConfig({
    overrides: {
      http: { port: 0 }, rtmp: { enabled: false }, ladder: LADDER,
      redis: { url: redis.url, keyPrefix: prefix }, storage: { dir: join(dir, 'objects') }, workDir: join(dir, 'work'),
      push: { idleTimeoutMs: 2000 },
      ai: { queueWaitMs: 30_000, suspendBaseMs: 60_000 },
      payments: { transcodePrice: UNIT_PRICE, aiPrices: [{ pipeline: '*', model_id: '*', ...UNIT_PRICE }], onInsufficientBalance: policy },
    },
  }), createLogger({ level: 'silent' }), 'gateway');
  return { app: started, base: `http://127.0.0.1:${started.httpPort}` };
}

before(async () => {
  redis = await startRedis();
  worker = await startFakeAiWorker();
  failing = await startFakeAiWorker();
  dataDir = mkdtempSync(join(tmpdir(), 'mg-billing-'));
  ({ app, base } = await gateway('bill', 'end'));
  const all = ['text-to-image', 'image-to-image', 'image-to-video', 'upscale', 'audio-to-text', 'llm', 'segment-anything-2', 'image-to-text', 'text-to-speech'];
  const defaults: Record<string, string> = {
    'text-to-image': 'stabilityai/sdxl-turbo', 'image-to-image': 'stabilityai/sdxl-turbo', 'image-to-video': 'stabilityai/stable-video-diffusion-img2vid-xt',
    upscale: 'stabilityai/stable-diffusion-x4-upscaler', 'audio-to-text': 'openai/whisper-large-v3', llm: 'meta-llama/llama-3.1-8B-Instruct',
    'segment-anything-2': 'facebook/sam2-hiera-large', 'image-to-text': 'Salesforce/blip-image-captioning-large', 'text-to-speech': 'parler-tts/parler-tts-large-v1',
  };
  await api('POST', '/api/workers', { url: worker.url, pipelines: all.map((p) => ({ pipeline: p, model_id: defaults[p], warm: true, capacity: 256 })) });
  await api('POST', '/api/workers', { url: failing.url, pipelines: [
    { pipeline: 'text-to-image', model_id: 'failover/model', warm: true, capacity: 4 },
    { pipeline: 'text-to-image', model_id: 'only-failing/model', warm: true, capacity: 4 },
  ] });
  await api('POST', '/api/workers', { url: worker.url.replace('127.0.0.1', 'localhost'), pipelines: [{ pipeline: 'text-to-image', model_id: 'failover/model', warm: false, capacity: 4 }] });
  const cut = join(dataDir, 'cut');
  await run('mkdir', ['-p', cut]);
  await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', await clipWith2sGop(8), '-c', 'copy', '-f', 'segment', '-segment_time', '2', '-segment_format', 'mpegts', join(cut, '%d.ts')]);
  segments = readdirSync(cut).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => join(cut, f));
});

after(async () => {
  await app?.close();
  await worker?.close();
  await failing?.close();
  await redis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function api(method: string, path: string, body?: unknown, on = base): Promise<any> {
  const res = await fetch(`${on}${path}`, { method, headers: { 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function entries(account: string, on = base): Promise<{ id: string; kind: string; amount: string; units: string; manifestID?: string; seq?: number; pipeline?: string; ref: string }[]> {
  return (await api('GET', `/api/accounts/${account}/ledger?limit=1000`, undefined, on)).entries;
}

async function newAccount(name: string, credits: bigint, on = base): Promise<{ id: string; key: string }> {
  const account = await api('POST', '/api/accounts', { name, credits: credits.toString() }, on);
  const issued = await api('POST', `/api/accounts/${account.id}/api-keys`, { label: 'test' }, on);
  return { id: account.id, key: issued.key };
}

test('transcoding is charged the pixels actually encoded: Σ width × height × frames as counted by ffprobe', { timeout: 120_000 }, async () => {
  for (let seq = 0; seq < segments.length; seq++) {
    const res = await fetch(`${base}/live/billed/${seq}.ts`, { method: 'POST', body: readFileSync(segments[seq]!) });
    assert.equal(res.status, 200, await res.text());
  }
  const charged = (await entries('local')).filter((e) => e.kind === 'transcode' && e.manifestID === 'billed');
  assert.equal(charged.length, segments.length, 'one entry per segment');
  for (const entry of charged) {
    let pixels = 0n;
    for (const rendition of LADDER) {
      const p = await probeSegment(`${base}/stream/billed/${rendition}/${entry.seq}.ts`);
      pixels += BigInt(p.width) * BigInt(p.height) * BigInt(p.frames);
    }
    assert.equal(BigInt(entry.units), pixels, `seq ${entry.seq}: charged units equal ffprobe's count`);
    assert.equal(BigInt(entry.amount), pixels, 'at 1 credit per pixel');
  }
  const usage = await api('GET', '/api/accounts/local/usage');
  const stream = usage.byStream.find((s: { manifestID: string }) => s.manifestID === 'billed');
  assert.equal(BigInt(stream.amount), charged.reduce((sum, e) => sum + BigInt(e.amount), 0n));
});

test('200 parallel AI requests against a balance for exactly 100: 100 succeed, 100 get 402, the balance ends at 0', { timeout: 120_000 }, async () => {
  const perRequest = 64n * 64n; // text-to-image units: height × width × images
  const { id, key } = await newAccount('burst', perRequest * 100n);
  worker.setMode({ delayMs: 300 }); // keep requests in flight together
  const responses = await Promise.all(Array.from({ length: 200 }, () => fetch(`${base}/text-to-image`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` }, body: JSON.stringify({ prompt: 'x', width: 64, height: 64 }),
  })));
  worker.setMode('ok');
  const statuses = responses.map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 200).length, 100);
  assert.equal(statuses.filter((s) => s === 402).length, 100);
  const refused = responses.find((r) => r.status === 402)!;
  assert.match(((await refused.json()) as { detail: { msg: string } }).detail.msg, /insufficient balance/);
  assert.equal((await api('GET', `/api/accounts/${id}`)).balance, '0');
  assert.equal((await entries(id)).filter((e) => e.kind === 'ai').length, 100);
});

test('a request that fails over to a second worker is charged once; a failed request is not charged', async () => {
  const { id, key } = await newAccount('failover', 1_000_000n);
  failing.setMode('fail');
  const res = await fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` }, body: JSON.stringify({ prompt: 'x', model_id: 'failover/model', width: 64, height: 64 }) });
  assert.equal(res.status, 200);
  const requestID = res.headers.get('x-request-id')!;
  const charged = (await entries(id)).filter((e) => e.ref === requestID);
  assert.equal(charged.length, 1);
  assert.equal(charged[0]!.amount, String(64 * 64));
  // Served only by the failing worker (suspended by now): the request fails and must cost nothing.
  const failed = await fetch(`${base}/text-to-image`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` }, body: JSON.stringify({ prompt: 'x', model_id: 'only-failing/model', width: 64, height: 64 }) });
  assert.equal(failed.status, 503);
  assert.equal((await api('GET', `/api/accounts/${id}`)).balance, String(1_000_000 - 64 * 64), 'the failed request was not charged');
});

test('a segment result delivered twice, or a transcoder that dies before acknowledging, is charged once', async () => {
  const client = createRedis({ url: redis.url, logger: silentLogger(), name: 'test' });
  try {
    const ledger = new RedisLedger({ redis: client, prefix: 'idem' });
    await ledger.createAccount({ id: 'acct', name: 'acct', credits: 10_000_000n });
    const billing = new Billing({ ledger, transcodePrice: UNIT_PRICE, aiPrices: [], logger: silentLogger() });
    const segment = { accountID: 'acct', manifestID: 'm', session: 's1', seq: 7, durationMs: 2000, renditions: [{ width: 426, height: 240, fps: 24 }] };
    assert.equal(await billing.reserveSegment(segment), true);
    const pixels = 426n * 240n * 48n;
    await billing.settleSegment({ manifestID: 'm', session: 's1', seq: 7, pixels });
    await billing.settleSegment({ manifestID: 'm', session: 's1', seq: 7, pixels }); // the same result delivered again
    // A transcoder that died before acknowledging: BullMQ runs the job again (reserve + settle again).
    assert.equal(await billing.reserveSegment(segment), true);
    await billing.settleSegment({ manifestID: 'm', session: 's1', seq: 7, pixels });
    const acct = (await ledger.getAccount('acct'))!;
    assert.equal(acct.balance, 10_000_000n - pixels);
    assert.equal((await ledger.listEntries('acct')).entries.filter((e) => e.kind === 'transcode').length, 1);
  } finally {
    client.disconnect();
  }
});

test('each AI pipeline is charged the units of the contract table', { timeout: 60_000 }, async () => {
  const { id, key } = await newAccount('units', 10n ** 12n);
  const auth = { Authorization: `Bearer ${key}` };
  const png = solidPng(64, 48);
  const form = (fields: Record<string, string>, file?: { field: string; data: Buffer; type: string }) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    if (file) f.append(file.field, new Blob([file.data], { type: file.type }), 'in');
    return f;
  };
  const cases: [string, RequestInit, bigint][] = [
    ['text-to-image', { body: JSON.stringify({ prompt: 'x', width: 64, height: 128, num_images_per_prompt: 2 }), headers: { 'Content-Type': 'application/json', ...auth } }, 64n * 128n * 2n],
    ['image-to-image', { body: form({ prompt: 'x' }, { field: 'image', data: png, type: 'image/png' }), headers: auth }, 64n * 48n],
    ['upscale', { body: form({ prompt: 'x' }, { field: 'image', data: png, type: 'image/png' }), headers: auth }, 64n * 48n],
    ['segment-anything-2', { body: form({}, { field: 'image', data: png, type: 'image/png' }), headers: auth }, 64n * 48n],
    ['image-to-text', { body: form({}, { field: 'image', data: png, type: 'image/png' }), headers: auth }, 64n * 48n],
    ['image-to-video', { body: form({ width: '256', height: '128' }, { field: 'image', data: png, type: 'image/png' }), headers: auth }, 256n * 128n * 25n],
    ['audio-to-text', { body: form({}, { field: 'audio', data: sineWav(1.5), type: 'audio/wav' }), headers: auth }, 1500n],
    ['text-to-speech', { body: JSON.stringify({ text: 'hello there' }), headers: { 'Content-Type': 'application/json', ...auth } }, 11n],
  ];
  for (const [pipeline, init, units] of cases) {
    const res = await fetch(`${base}/${pipeline}`, { method: 'POST', ...init });
    assert.equal(res.status, 200, `${pipeline}: ${await res.clone().text()}`);
    const entry = (await entries(id)).find((e) => e.ref === res.headers.get('x-request-id'));
    assert.equal(entry?.units, units.toString(), `${pipeline} units`);
    assert.equal(entry?.pipeline, pipeline);
  }
  const llm = await fetch(`${base}/llm`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...auth }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 200 }) });
  const reply = (await llm.json()) as { usage: { total_tokens: number } };
  const entry = (await entries(id)).find((e) => e.ref === llm.headers.get('x-request-id'));
  assert.equal(entry?.units, String(reply.usage.total_tokens), 'llm is charged the tokens the worker reported, not max_tokens');
});

test('an account without credits cannot start a stream; running out mid-stream ends it (policy end)', { timeout: 60_000 }, async () => {
  const empty = await api('POST', '/api/accounts', { name: 'empty' });
  const emptyKey = await api('POST', `/api/accounts/${empty.id}/stream-keys`, { manifestID: 'broke' });
  const refused = await fetch(`${base}/live/${emptyKey.streamKey}/0.ts`, { method: 'POST', body: readFileSync(segments[0]!) });
  assert.equal(refused.status, 402);
  assert.match(((await refused.json()) as { detail: { msg: string } }).detail.msg, /no credits/);

  // Credits for about one and a half segment estimates: the second segment cannot be paid.
  const oneSegment = (426n * 240n + 256n * 144n) * 24n * 2000n * 102n / 100_000n;
  const short = await api('POST', '/api/accounts', { name: 'short', credits: (oneSegment * 3n / 2n).toString() });
  const shortKey = await api('POST', `/api/accounts/${short.id}/stream-keys`, { manifestID: 'runs-out' });
  assert.equal((await fetch(`${base}/live/${shortKey.streamKey}/0.ts`, { method: 'POST', body: readFileSync(segments[0]!) })).status, 200);
  const second = await fetch(`${base}/live/${shortKey.streamKey}/1.ts`, { method: 'POST', body: readFileSync(segments[1]!) });
  assert.equal(second.status, 402);
  assert.match(((await second.json()) as { detail: { msg: string } }).detail.msg, /ran out of credits/);
  const lists = await waitForEndedPlaylists(base, 'runs-out', LADDER.length + 1, 20_000);
  assert.ok(lists.every((m) => m.endlist), 'the stream ended');
  const balance = BigInt((await api('GET', `/api/accounts/${short.id}`)).balance);
  assert.ok(balance >= 0n, 'never negative');
});

test('with policy source-only, an account that runs out keeps its source rendition and transcoding pauses', { timeout: 60_000 }, async () => {
  const other = await gateway('bill2', 'source-only');
  try {
    const oneSegment = (426n * 240n + 256n * 144n) * 24n * 2000n * 102n / 100_000n;
    const account = await api('POST', '/api/accounts', { name: 'thrifty', credits: (oneSegment * 3n / 2n).toString() }, other.base);
    const key = await api('POST', `/api/accounts/${account.id}/stream-keys`, { manifestID: 'thrifty' }, other.base);
    for (let seq = 0; seq < 3; seq++) {
      const res = await fetch(`${other.base}/live/${key.streamKey}/${seq}.ts`, { method: 'POST', body: readFileSync(segments[seq]!) });
      assert.equal(res.status, 200, `seq ${seq} is accepted`);
    }
    const lists = await waitForEndedPlaylists(other.base, 'thrifty', LADDER.length + 1, 20_000);
    assert.equal(lists[0]!.segments.length, 3, 'source lists every segment');
    assert.equal(lists[1]!.segments.length, 1, 'the rendition stopped after the paid segment');
    assert.equal((await entries(account.id, other.base)).filter((e) => e.kind === 'transcode').length, 1);
  } finally {
    await other.app.close();
  }
});
