/**
 * Live video-to-video end to end, the payments half (gateway and reference worker as
 * processes, the counter clip over RTMP): a session is charged one ledger entry per 5 s of
 * wall time, the charges stop when the input stream ends and the rest of the hold comes
 * back; a session whose account runs out stops with "insufficient balance" in its status,
 * the balance at 0 and never below.
 *
 * Prices: the live pipeline at 1 credit per 27 648 000 units, i.e. 1 credit per second at the
 * default 1280×720×30 units/s; a hold of 5 s (`payments.liveHoldSec`), so running out takes
 * seconds instead of the default 60 s hold's minute. Transcoding is free here (the session's
 * account also pays for its `-out` stream's ladder, as for any stream it publishes).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { counterClip } from '../../helpers/frame-counter.ts';
import {
  startLiveCluster, accountWithApiKey, accountBalance, ledgerEntries, publishLoop, startLive, liveStatus, waitFor, LIVE_PIPELINE, LIVE_MODEL,
  type LiveCluster, type ListedEntry,
} from '../../helpers/live-cluster.ts';
import { fetchMedia } from '../../helpers/hls.ts';

let cluster: LiveCluster;
let clip: string;
const CREDIT_PER_SECOND = { pipeline: LIVE_PIPELINE, model_id: '*', pricePerUnit: 1, pixelsPerUnit: 1280 * 720 * 30 };

before(async () => {
  clip = await counterClip(20);
  cluster = await startLiveCluster({
    workers: 1,
    gatewayEnv: {
      MEDIAGATE_PAYMENTS_AI_PRICES: JSON.stringify([{ pipeline: '*', model_id: '*', pricePerUnit: 1, pixelsPerUnit: 1_000_000 }, CREDIT_PER_SECOND]),
      MEDIAGATE_PAYMENTS_LIVE_HOLD_SEC: '5',
      // Transcoding free: the session's account also pays the `-out` stream's ladder, which would blur the live figures.
      MEDIAGATE_PAYMENTS_TRANSCODE_PRICE_PRICE_PER_UNIT: '0',
    },
  });
});

after(async () => {
  await cluster?.close();
});

/** The gateway's part of a live status reply. */
const gatewayStatus = (body: Record<string, unknown>): Record<string, unknown> => (body['gateway_status'] ?? {}) as Record<string, unknown>;
const liveEntries = (entries: readonly ListedEntry[]): ListedEntry[] => entries.filter((e) => e.pipeline === LIVE_PIPELINE).reverse();

async function waitForInput(stream: string): Promise<void> {
  await waitFor(`${stream} listed`, async () => ((await fetchMedia(`${cluster.gateway.httpUrl}/stream/${stream}/source.m3u8`).catch(() => undefined))?.segments.length ?? 0) > 0 || undefined, 20_000);
}

test('a session is charged one entry per 5 s of wall time, the charges stop when the stream ends, and the hold comes back', { timeout: 90_000 }, async () => {
  const { gateway } = cluster;
  const { accountID, apiKey } = await accountWithApiKey(gateway.httpUrl, 'payer', 1000n);
  const publisher = publishLoop(clip, gateway.rtmpUrl('paid'));
  let askedAtMs = 0;
  let startedAtMs = 0;
  let inputEndedAtMs = 0;
  try {
    await waitForInput('paid');
    askedAtMs = Date.now();
    const started = await startLive(gateway.httpUrl, 'paid', { filter: 'negate' }, apiKey);
    startedAtMs = Date.now();
    assert.equal(started.status, 200, started.text);
    assert.equal(await publisher.exited, 0, 'the 20 s clip was published');
    inputEndedAtMs = Date.now();
  } finally {
    publisher.stop();
  }
  // The input ended: the session ends, its charges stop.
  await waitFor('the session ended', async () => {
    const s = await liveStatus(gateway.httpUrl, 'paid');
    return gatewayStatus(s.body)['state'] === 'stopped' ? true : undefined;
  }, 40_000);
  const stoppedSeenAtMs = Date.now();
  const settled = liveEntries(await ledgerEntries(gateway.httpUrl, accountID));
  await new Promise((r) => setTimeout(r, 7000));
  const later = liveEntries(await ledgerEntries(gateway.httpUrl, accountID));
  assert.deepEqual(later.map((e) => e.id), settled.map((e) => e.id), 'no charge after the session ended');

  assert.ok(settled.length >= 3, `${settled.length} interval charges for a 20 s stream`);
  const [, requestID, first] = /^live:(.+):(\d+)$/.exec(settled[0]!.id) ?? [];
  assert.ok(requestID !== undefined && first !== undefined, `entries are keyed by session and interval: ${settled[0]!.id}`);
  assert.deepEqual(settled.map((e) => e.id), settled.map((_e, i) => `live:${requestID}:${Number(first) + i}`), 'one entry per interval, in order, none missing');
  for (const e of settled) {
    assert.equal(e.kind, 'ai');
    assert.equal(e.modelID, LIVE_MODEL);
    assert.equal(e.shortfall, undefined);
  }
  // Every full interval is 5 s at 1 credit/s; the last one may be shorter.
  for (const e of settled.slice(0, -1)) assert.equal(e.amount, '5', `${e.id}: 5 s at 1 credit/s`);
  const times = settled.map((e) => Date.parse(e.createdAt));
  const gaps = times.slice(1).map((t, i) => (t - times[i]!) / 1000);
  process.stdout.write(`# ${settled.length} charges, gaps between them ${gaps.map((g) => g.toFixed(2)).join(', ')} s\n`);
  for (const g of gaps.slice(0, -1)) assert.ok(g > 3.5 && g < 7, `a charge every 5 s of wall time (gap ${g.toFixed(2)} s)`);
  const charged = settled.reduce((s, e) => s + BigInt(e.amount), 0n);
  // The session ran from its start (before the start's reply) to its stop (after the input
  // ended, before its status said so); at 1 credit/s every second of it is paid, the last
  // partial interval too (each charge rounds up to a whole credit).
  const ranAtLeastS = (inputEndedAtMs - startedAtMs) / 1000;
  const ranAtMostS = (stoppedSeenAtMs - askedAtMs) / 1000;
  assert.ok(Number(charged) >= Math.floor(ranAtLeastS), `charged ${charged} s for at least ${ranAtLeastS.toFixed(2)} s of running`);
  assert.ok(Number(charged) <= Math.ceil(ranAtMostS) + 1, `charged ${charged} s for at most ${ranAtMostS.toFixed(2)} s of running`);
  // Exactly: metering began one interval before the first charge (a late timer only makes this
  // estimate shorter) and ended at the status's stopped_at; full intervals are 5 credits and the
  // last partial one is rounded up, so the charge covers the whole run and at most 1 credit more.
  const stoppedAt = Number(gatewayStatus((await liveStatus(gateway.httpUrl, 'paid')).body)['stopped_at']);
  const meteredS = (stoppedAt - (Date.parse(settled[0]!.createdAt) - 5000)) / 1000;
  process.stdout.write(`# charged ${charged} credits for ${meteredS.toFixed(2)} s metered (${ranAtLeastS.toFixed(2)}-${ranAtMostS.toFixed(2)} s seen by the test)\n`);
  assert.ok(Number(charged) >= meteredS - 0.05, `charged ${charged} credits for ${meteredS.toFixed(2)} s metered: the last partial interval is paid`);
  assert.ok(Number(charged) <= meteredS + 1.5, `charged ${charged} credits for ${meteredS.toFixed(2)} s metered: no more than the run`);
  assert.equal(await accountBalance(gateway.httpUrl, accountID), 1000n - charged, 'the hold came back: the balance is what the entries took');

  const usage = await (await fetch(`${gateway.httpUrl}/api/accounts/${accountID}/usage`, { headers: { authorization: 'Bearer live-admin-token-for-tests' } })).json() as
    { byModel: { pipeline: string; modelID: string; amount: string; entries: number }[] };
  assert.deepEqual(usage.byModel.map((m) => [m.pipeline, m.modelID, m.amount, m.entries]), [[LIVE_PIPELINE, LIVE_MODEL, charged.toString(), settled.length]],
    'the usage API shows the live charges by pipeline and model');
});

test('at zero balance the session stops with "insufficient balance" in its status, and the balance ends at 0', { timeout: 90_000 }, async () => {
  const { gateway } = cluster;
  // 12 credits: the 5 s hold (5) and 7 more: two full intervals are paid, the third runs out.
  const { accountID, apiKey } = await accountWithApiKey(gateway.httpUrl, 'poor', 12n);
  const publisher = publishLoop(clip, gateway.rtmpUrl('poor'), 3);
  try {
    await waitForInput('poor');
    const startedAtMs = Date.now();
    const started = await startLive(gateway.httpUrl, 'poor', { filter: 'negate' }, apiKey);
    assert.equal(started.status, 200, started.text);
    const status = await waitFor('the session stopped for the balance', async () => {
      const s = await liveStatus(gateway.httpUrl, 'poor');
      return gatewayStatus(s.body)['state'] === 'stopped' ? s : undefined;
    }, 45_000, () => gateway.proc.lines.slice(-15).join('\n'));
    assert.equal(gatewayStatus(status.body)['stop_reason'], 'insufficient balance', 'the status names the reason');
    process.stdout.write(`# stopped ${((Date.now() - startedAtMs) / 1000).toFixed(1)} s after start; status ${JSON.stringify(status.body).slice(0, 400)}\n`);
    assert.equal(publisher.child.exitCode, null, 'the input is still publishing: the balance stopped the session, not the input');
  } finally {
    publisher.stop();
    await publisher.exited;
  }
  assert.equal(await accountBalance(gateway.httpUrl, accountID), 0n, 'the balance is 0, not below');
  const entries = liveEntries(await ledgerEntries(gateway.httpUrl, accountID));
  assert.equal(entries.reduce((s, e) => s + BigInt(e.amount), 0n), 12n, 'the entries took every credit');
  assert.ok(entries.at(-1)!.shortfall !== undefined && BigInt(entries.at(-1)!.shortfall!) > 0n, 'the last interval records what could not be paid');
  await new Promise((r) => setTimeout(r, 6000));
  assert.equal(liveEntries(await ledgerEntries(gateway.httpUrl, accountID)).length, entries.length, 'no charge after the stop');
});

test('a start the account cannot hold is refused with 402 and charges nothing', { timeout: 60_000 }, async () => {
  const { gateway } = cluster;
  const { accountID, apiKey } = await accountWithApiKey(gateway.httpUrl, 'broke', 4n);
  const publisher = publishLoop(clip, gateway.rtmpUrl('broke'));
  try {
    await waitForInput('broke');
    const started = await startLive(gateway.httpUrl, 'broke', { filter: 'negate' }, apiKey);
    assert.equal(started.status, 402, started.text);
    assert.equal((JSON.parse(started.text) as { detail: { code: string } }).detail.code, 'INSUFFICIENT_BALANCE');
  } finally {
    publisher.stop();
    await publisher.exited;
  }
  assert.equal(await accountBalance(gateway.httpUrl, accountID), 4n);
  assert.deepEqual(liveEntries(await ledgerEntries(gateway.httpUrl, accountID)), []);
});
