/**
 * One live session (src/ai/live/live-session.ts) over stand-ins of its ports (trickle
 * channels, billing, the -out stream): the interval charges and the stop at zero balance with
 * its reason; a refused hold starts no worker; a slow worker (too many input segments in
 * flight) is left for another, which gets the cached update; an update while no worker runs
 * is cached, not lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger } from '../../../../src/log/logger.ts';
import { GatewayError } from '../../../../src/errors/gateway-error.ts';
import { LiveSession, type StartedWorker } from '../../../../src/ai/live/live-session.ts';
import type { LiveSessionEvent, LiveTrickle, LiveTrickleSegment } from '../../../../src/ai/live/live-ports.ts';

/** Trickle channels in memory: publishers record writes (a write to `stall` channels never resolves); subscribers wait until closed. */
function fakeTrickle(stalled: Set<string>): LiveTrickle & { written: Map<string, string[]> } {
  const written = new Map<string, string[]>();
  return {
    written,
    publisher: (url) => ({
      write: (bytes: Buffer) => {
        written.set(url, [...(written.get(url) ?? []), bytes.toString()]);
        return stalled.has(url) ? new Promise<void>(() => undefined) : Promise.resolve();
      },
      close: async () => undefined,
    }),
    subscriber: () => {
      let stop: () => void = () => undefined;
      const closed = new Promise<void>((r) => { stop = r; });
      return {
        close: () => stop(),
        async *[Symbol.asyncIterator](): AsyncGenerator<LiveTrickleSegment> { await closed; },
      };
    },
  };
}

function worker(id: string, released: string[]): StartedWorker {
  return { workerID: id, publishUrl: `${id}/in`, subscribeUrl: `${id}/out`, controlUrl: `${id}/control`, eventsUrl: `${id}/events`, release: () => released.push(id) };
}

const TIMINGS = { eventTimeoutMs: 60_000, outputTimeoutMs: 60_000, maxInflightSegments: 3, keepaliveIntervalMs: 60_000, chargeIntervalMs: 40, swapWindowMs: 180_000, maxSwaps: 2 };

function session(options: Partial<ConstructorParameters<typeof LiveSession>[0]> & { trickle: LiveTrickle }) {
  const events: LiveSessionEvent[] = [];
  const ended: string[] = [];
  const s = new LiveSession({
    requestID: 'ai-1', stream: 'cam', outputManifestID: 'cam-out', modelID: 'mediagate/cpu-filter', accountID: 'acct', params: { filter: 'negate' },
    startWorker: async () => worker('w1', []), suspendWorker: () => undefined,
    readSegment: async (key) => Buffer.from(key),
    openOutput: () => ({ write: () => undefined, end: async (reason) => { ended.push(reason); } }),
    events: { emit: (e) => events.push(e) },
    timings: TIMINGS, logger: silentLogger(),
    ...options,
  });
  return { s, events, ended };
}

test('a charge every interval; at zero balance the session stops with "insufficient balance" and releases the hold', async () => {
  const calls: string[] = [];
  const released: string[] = [];
  const { s, events } = session({
    trickle: fakeTrickle(new Set()),
    startWorker: async () => worker('w1', released),
    billing: {
      open: async (o) => { calls.push(`open ${o.accountID} ${o.pipeline}`); },
      charge: async (c) => { calls.push(`charge ${c.interval} ${c.seconds}`); return c.interval < 3 ? { ok: true } : { ok: false, reason: 'insufficient balance' }; },
      close: async (id) => { calls.push(`close ${id}`); },
    },
  });
  await s.start();
  assert.equal(s.state, 'running');
  for (let i = 0; i < 100 && (s.state as string) !== 'stopped'; i++) await delay(20);
  assert.equal(s.state, 'stopped');
  assert.equal(s.stopReason, 'insufficient balance');
  assert.deepEqual(calls, ['open acct live-video-to-video', 'charge 1 0.04', 'charge 2 0.04', 'charge 3 0.04', 'close ai-1']);
  assert.deepEqual(released, ['w1'], 'the worker slot is given back');
  assert.deepEqual(events.map((e) => e.type), ['live.started', 'live.ended']);
  assert.equal((s.status()['gateway_status'] as { stop_reason: string }).stop_reason, 'insufficient balance');
});

test('a hold that cannot be taken starts no worker and rejects with 402', async () => {
  let started = 0;
  const { s } = session({
    trickle: fakeTrickle(new Set()),
    startWorker: async () => { started += 1; return worker('w1', []); },
    billing: {
      open: async () => { throw new GatewayError('INSUFFICIENT_BALANCE', 'insufficient balance for 60 s'); },
      charge: async () => ({ ok: true }), close: async () => undefined,
    },
  });
  await assert.rejects(s.start(), (e: GatewayError) => e.status === 402);
  assert.equal(started, 0);
  assert.equal(s.state, 'stopped');
});

test('a worker with 3 input segments in flight is left as slow; the next worker gets the cached update on its control channel', async () => {
  const trickle = fakeTrickle(new Set(['w1/in']));
  const starts: string[][] = [];
  let n = 0;
  const released: string[] = [];
  const { s, events } = session({
    trickle,
    startWorker: async (exclude) => { starts.push([...exclude]); n += 1; return worker(`w${n}`, released); },
  });
  await s.start();
  await s.update(Buffer.from('{"filter":"grayscale"}'));
  assert.deepEqual(trickle.written.get('w1/control'), ['{"filter":"grayscale"}']);
  for (const key of ['a', 'b', 'c', 'd']) {
    s.inputListed(key);
    await delay(5);
  }
  for (let i = 0; i < 100 && n < 2; i++) await delay(10);
  await delay(20);
  assert.deepEqual(starts, [[], ['w1']], 'the second start excludes the slow worker');
  assert.deepEqual(trickle.written.get('w1/in'), ['a', 'b', 'c'], 'the 4th segment was not sent to the slow worker');
  assert.deepEqual(trickle.written.get('w2/control'), ['{"filter":"grayscale"}'], 'the cached update is replayed');
  assert.deepEqual(released, ['w1']);
  const swapped = events.find((e) => e.type === 'live.swapped');
  assert.match(swapped && swapped.type === 'live.swapped' ? swapped.reason : '', /worker is slow/);
  s.inputListed('e');
  await delay(20);
  assert.deepEqual(trickle.written.get('w2/in'), ['e'], 'input goes on to the new worker');
  await s.stop('done');
  assert.deepEqual(released, ['w1', 'w2']);
});

test('when the input ends, the worker\'s input channel is closed and its remaining output is taken before the session stops', async () => {
  const trickle = fakeTrickle(new Set());
  const closedChannels: string[] = [];
  let pushOutput: (bytes: string) => void = () => undefined;
  let endOutput: () => void = () => undefined;
  const outputs: string[] = [];
  const { s } = session({
    trickle: {
      publisher: (url, type) => ({ ...trickle.publisher(url, type), close: async () => { closedChannels.push(url); } }),
      subscriber: (url) => {
        if (!url.endsWith('/out')) return trickle.subscriber(url);
        const queue: string[] = [];
        let wake: () => void = () => undefined;
        let ended = false;
        pushOutput = (b) => { queue.push(b); wake(); };
        endOutput = () => { ended = true; wake(); };
        return {
          close: () => endOutput(),
          async *[Symbol.asyncIterator](): AsyncGenerator<LiveTrickleSegment> {
            for (let seq = 0; ; seq++) {
              while (queue.length === 0 && !ended) await new Promise<void>((r) => { wake = r; });
              if (queue.length === 0) return;
              const body = Buffer.from(queue.shift()!);
              yield { seq, body: (async function* () { yield body; })() };
            }
          },
        };
      },
    },
    openOutput: () => ({ write: (b) => { outputs.push(b.toString()); }, end: async () => undefined }),
  });
  await s.start();
  s.inputListed('a');
  await delay(10);
  const ending = s.inputEnded('input stream ended');
  await delay(20);
  assert.ok(closedChannels.includes('w1/in'), 'the input channel is closed first');
  assert.equal(s.state, 'running', 'still taking output');
  pushOutput('out-a');
  await delay(10);
  endOutput();
  await ending;
  assert.deepEqual(outputs, ['out-a'], 'the output of the last input reached the -out stream');
  assert.equal(s.state, 'stopped');
  assert.equal(s.stopReason, 'input stream ended');
});
