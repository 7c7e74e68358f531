/**
 * The reference worker's live video-to-video pipeline end to end over real HTTP on
 * 127.0.0.1: a real worker (live only), the clip's MPEG-TS segments published to its input
 * channel at real-time pace with our trickle publisher, the output subscribed and decoded
 * with ffmpeg and compared with the input frame by frame, a control message switching the
 * filter mid-stream, status events, and teardown with no ffmpeg left behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAiWorkerConfig } from '../../../src/ai-worker/config.ts';
import { startAiWorker, type RunningAiWorker } from '../../../src/ai-worker/ai-worker.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { TricklePublisher, TrickleSubscriber } from '../../../src/trickle/index.ts';
import { clipWith2sGop, tsSourceSegments, type TsSourceSegment } from '../../helpers/media.ts';

const run = promisify(execFile);
const W = 160;
const H = 90;
const FRAME_BYTES = W * H * 3;
const SEGMENT_MS = 2000;
/** Frames around the filter switch left out of the comparison (decoder delay, filters in flight). */
const SWITCH_SLACK = 8;

interface StartReply { publish_url: string; subscribe_url: string; control_url: string; events_url: string; manifest_id: string; request_id: string }
interface StatusMessage {
  queue_event_type: string;
  event: {
    type: string; state: string; pipeline: string; timestamp: number; start_time: number;
    input_status: { fps: number; last_input_time: number | null };
    inference_status: { fps: number; last_params: unknown; last_params_hash: string; last_output_time: number | null; restart_count: number };
  };
}

/** Frames of an MPEG-TS byte string, scaled to W×H rgb24. */
async function decodeFrames(ts: Buffer, dir: string, name: string): Promise<Buffer[]> {
  const file = join(dir, name);
  await writeFile(file, ts);
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-map', '0:v:0', '-vf', `scale=${W}:${H}`, '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 1 << 28 });
  const frames: Buffer[] = [];
  for (let off = 0; off + FRAME_BYTES <= stdout.length; off += FRAME_BYTES) frames.push(stdout.subarray(off, off + FRAME_BYTES));
  return frames;
}

function mean(frame: Buffer): number {
  let sum = 0;
  for (const v of frame) sum += v;
  return sum / frame.length;
}

/** Mean |out − f(in)| per byte. */
function meanAbsDiff(out: Buffer, input: Buffer, f: (v: number) => number): number {
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += Math.abs(out[i]! - f(input[i]!));
  return sum / out.length;
}

/** Mean of max(R,G,B) − min(R,G,B): 0 for a gray picture. */
function colourSpread(frame: Buffer): number {
  let sum = 0;
  for (let i = 0; i < frame.length; i += 3) {
    const r = frame[i]!, g = frame[i + 1]!, b = frame[i + 2]!;
    sum += Math.max(r, g, b) - Math.min(r, g, b);
  }
  return sum / (frame.length / 3);
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

async function ffmpegChildren(): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => /ffmpeg/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
}

/** Polls `check` every 50 ms; `what` (a function: evaluated at the timeout, so it shows the state then) names it in the error. */
async function waitFor(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('reference worker: live-video-to-video', () => {
  let dir: string;
  let segments: TsSourceSegment[];
  let inputFrames: Buffer[];
  let worker: RunningAiWorker;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'live-v2v-'));
    segments = await tsSourceSegments(await clipWith2sGop(12), 12, dir);
    inputFrames = await decodeFrames(Buffer.concat(segments.map((s) => s.bytes)), dir, 'input.ts');
    const config = loadAiWorkerConfig({ overrides: { port: 0, models: [], liveCapacity: 1, liveStatusIntervalMs: 1000, logLevel: 'silent' } });
    worker = await startAiWorker(config, createLogger({ level: 'silent' }));
  });

  after(async () => {
    await worker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(body: unknown): Promise<Response> {
    return fetch(`${worker.url}/live-video-to-video`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('negates every frame, switches to grayscale on a control message, reports status, and tears down on DELETE', async () => {
    const res = await start({ model_id: 'mediagate/cpu-filter', params: { filter: 'negate' }, gateway_request_id: 'req-1', stream_id: 'stream-1' });
    assert.equal(res.status, 200);
    const reply = (await res.json()) as StartReply;
    assert.match(reply.manifest_id, /^[0-9a-f]{24}$/);
    assert.equal(reply.request_id, 'req-1');
    assert.equal(reply.publish_url, `${worker.publicUrl}/ai/trickle/${reply.manifest_id}`);
    assert.equal(reply.subscribe_url, `${reply.publish_url}-out`);
    assert.equal(reply.control_url, `${reply.publish_url}-control`);
    assert.equal(reply.events_url, `${reply.publish_url}-events`);
    assert.equal((await (await fetch(`${worker.url}/health`)).json() as { status: string }).status, 'OK', 'a running stream makes the worker busy');

    // The gateway's side: subscribe to output and events, publish input and control.
    const outputSub = new TrickleSubscriber(reply.subscribe_url, { start: 0 });
    const eventsSub = new TrickleSubscriber(reply.events_url, { start: 0 });
    const outputSegments: { seq: number; bytes: Buffer }[] = [];
    const reading = (async () => { for await (const s of outputSub) outputSegments.push({ seq: s.seq, bytes: await readAll(s.body) }); })();
    const events: StatusMessage[] = [];
    const eventsReading = (async () => { for await (const s of eventsSub) events.push(JSON.parse((await readAll(s.body)).toString()) as StatusMessage); })();
    const input = new TricklePublisher(reply.publish_url);
    const control = new TricklePublisher(reply.control_url, { contentType: 'application/json' });

    const switchAfter = 3; // segments 0-2 negated, 3-5 grayscale
    const started = Date.now();
    for (const [i, segment] of segments.entries()) {
      if (i === switchAfter) {
        // Wait until the worker has turned out the frames so far (all but the few the decoder
        // holds until more input comes), so the switch is near a known frame.
        const framesBefore = segments.slice(0, switchAfter).reduce((n, s) => n + s.frames.length, 0);
        await waitFor(() => `the negated frames ${JSON.stringify(worker.live.sessions.get(reply.manifest_id)?.counters)}`, () => (worker.live.sessions.get(reply.manifest_id)?.counters.outputFrames ?? 0) >= framesBefore - SWITCH_SLACK, 30_000);
        await control.write(JSON.stringify({ keep: 'alive' }));
        await control.write(JSON.stringify({ filter: 'grayscale' }));
      }
      // Real-time pace, as a live gateway sends its source segments.
      const due = started + i * SEGMENT_MS;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      await input.write(segment.bytes);
    }
    const session = worker.live.sessions.get(reply.manifest_id);
    assert.ok(session, 'the session runs');
    await input.close(); // the gateway's DELETE of publish_url: the stream ends once processed
    await session.done;
    await reading;
    await eventsReading;
    const counters = session.counters;

    // Output: one segment per 2 s keyframe interval, in order, the whole clip.
    assert.deepEqual(outputSegments.map((s) => s.seq), outputSegments.map((_, i) => i));
    assert.ok(outputSegments.length >= 5 && outputSegments.length <= 7, `${outputSegments.length} output segments for 12 s`);
    const outFrames = await decodeFrames(Buffer.concat(outputSegments.map((s) => s.bytes)), dir, 'output.ts');
    assert.ok(Math.abs(outFrames.length - inputFrames.length) <= 2, `${outFrames.length} output frames for ${inputFrames.length} input frames`);

    // Frame by frame: before the switch, out ≈ 255 − in; after it, gray (R = G = B) with the input's luma.
    const switchFrame = segments.slice(0, switchAfter).reduce((n, s) => n + s.frames.length, 0);
    const negated = outFrames.slice(0, switchFrame - SWITCH_SLACK);
    const negErr = negated.map((f, k) => meanAbsDiff(f, inputFrames[k]!, (v) => 255 - v));
    const asIs = negated.map((f, k) => meanAbsDiff(f, inputFrames[k]!, (v) => v));
    const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(avg(negErr) < 12, `negated frames: mean |out - (255 - in)| = ${avg(negErr).toFixed(2)}`);
    assert.ok(avg(asIs) > 60, `negated frames differ from the input: mean |out - in| = ${avg(asIs).toFixed(2)}`);
    for (const [k, f] of negated.entries()) assert.ok(Math.abs(mean(f) - (255 - mean(inputFrames[k]!))) < 8, `frame ${k}: mean ${mean(f).toFixed(1)} vs 255 - ${mean(inputFrames[k]!).toFixed(1)}`);
    const grayFrames = outFrames.slice(switchFrame + SWITCH_SLACK);
    const inputSpread = avg(inputFrames.slice(switchFrame + SWITCH_SLACK).map(colourSpread));
    const outSpread = avg(grayFrames.map(colourSpread));
    assert.ok(inputSpread > 15, `the input has colour (spread ${inputSpread.toFixed(1)})`);
    assert.ok(outSpread < 4, `frames after the control message are gray: colour spread ${outSpread.toFixed(2)} (input ${inputSpread.toFixed(1)})`);
    const lumaErr = avg(grayFrames.map((f, k) => Math.abs(mean(f) - mean(inputFrames[switchFrame + SWITCH_SLACK + k]!))));
    assert.ok(lumaErr < 8, `grayscale keeps the brightness: mean difference ${lumaErr.toFixed(2)}`);

    // Status events: ai-runner's shape, ONLINE with the input and inference fps, the new params and their hash.
    assert.ok(events.length >= 5, `${events.length} status events`);
    for (const e of events) {
      assert.equal(e.queue_event_type, 'ai_stream_events');
      assert.equal(e.event.type, 'status');
      assert.equal(e.event.pipeline, 'mediagate/cpu-filter');
      assert.ok(e.event.timestamp > 1e12 && e.event.start_time > 1e12, 'timestamps in ms');
    }
    const online = events.filter((e) => e.event.state === 'ONLINE');
    assert.ok(online.length > 0, `some status ONLINE: ${events.map((e) => e.event.state).join(',')}`);
    const lastOnline = online[online.length - 1]!.event;
    assert.ok(lastOnline.input_status.fps > 15 && lastOnline.inference_status.fps > 15, `fps ${lastOnline.input_status.fps} in, ${lastOnline.inference_status.fps} out`);
    const gray = events.find((e) => (e.event.inference_status.last_params as { filter?: string }).filter === 'grayscale');
    assert.ok(gray, 'a status event carries the new params');
    assert.equal(gray.event.inference_status.last_params_hash, createHash('md5').update('{"filter": "grayscale"}').digest('hex'));
    assert.equal(events[events.length - 1]!.event.state, 'OFFLINE', 'the last event says the stream ended');

    // Teardown: channels gone, no ffmpeg left, capacity free again.
    assert.equal(worker.trickle.hasChannel(reply.manifest_id), false);
    assert.equal(worker.live.active, 0);
    await waitFor('no ffmpeg child', async () => (await ffmpegChildren()).length === 0, 5000);
    await control.close();
    const elapsedS = (Date.now() - started) / 1000;
    process.stdout.write(`# ${counters.inputFrames} frames in, ${counters.outputFrames} out, ${counters.outputSegments} segments, ${elapsedS.toFixed(1)} s, dropped ${counters.droppedFrames}\n`);
  });

  it('advertises the live capability (pipeline, model, warm, capacity) in its gateway registration', async () => {
    const bodies: unknown[] = [];
    const gateway = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/api/workers') bodies.push(JSON.parse(Buffer.concat(parts).toString()));
        res.writeHead(req.method === 'POST' ? 201 : 204, { 'content-type': 'application/json' }).end(req.method === 'POST' ? '{"id":"w1"}' : undefined);
      });
    });
    gateway.listen(0, '127.0.0.1');
    await new Promise((r) => gateway.once('listening', r));
    const liveOnly = await startAiWorker(loadAiWorkerConfig({
      overrides: { port: 0, models: [], liveCapacity: 2, gatewayUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`, logLevel: 'silent' },
    }), createLogger({ level: 'silent' }));
    try {
      await waitFor('a registration', () => bodies.length > 0, 10_000);
      const body = bodies[0] as { url: string; pipelines: unknown[] };
      assert.equal(body.url, liveOnly.publicUrl);
      assert.deepEqual(body.pipelines, [{ pipeline: 'live-video-to-video', model_id: 'mediagate/cpu-filter', warm: true, capacity: 2 }]);
      const health = (await (await fetch(`${liveOnly.url}/health`)).json()) as { status: string };
      assert.equal(health.status, 'IDLE', 'a live-only worker loads nothing and is ready at once');
      const upscale = await fetch(`${liveOnly.url}/upscale`, { method: 'POST', body: new FormData() });
      assert.equal(upscale.status, 404);
    } finally {
      await liveOnly.close();
      gateway.closeAllConnections();
      await new Promise<void>((r) => gateway.close(() => r()));
    }
  });

  it('turns out every frame decoded so far while the input pauses (none waits for the next input)', async () => {
    const res = await start({ params: { filter: 'negate' } });
    assert.equal(res.status, 200);
    const reply = (await res.json()) as StartReply;
    const outputSub = new TrickleSubscriber(reply.subscribe_url, { start: 0 });
    const reading = (async () => { for await (const s of outputSub) s.body.resume(); })();
    const input = new TricklePublisher(reply.publish_url);
    const sent = segments.slice(0, 2);
    for (const segment of sent) await input.write(segment.bytes);
    const session = worker.live.sessions.get(reply.manifest_id)!;
    // The input now pauses (as between a live gateway's segments). Once the decoder has given
    // what it can, every decoded frame must reach the encoder: a frame held until the next
    // input frame would stay out as long as the pause lasts.
    const framesSent = sent.reduce((n, s) => n + s.frames.length, 0);
    let settled = { inputFrames: 0, outputFrames: 0 };
    let stableSince = Date.now();
    await waitFor('the decoded frames to come out', () => {
      const { inputFrames: i, outputFrames: o } = session.counters;
      if (i !== settled.inputFrames || o !== settled.outputFrames) {
        settled = { inputFrames: i, outputFrames: o };
        stableSince = Date.now();
      }
      return i > 0 && Date.now() - stableSince > 3000;
    }, 30_000);
    assert.equal(settled.outputFrames, settled.inputFrames, `${settled.inputFrames} frames decoded, ${settled.outputFrames} given to the encoder while the input paused`);
    const heldByDecoder = framesSent - settled.inputFrames;
    assert.ok(heldByDecoder < SWITCH_SLACK, `the decoder holds ${heldByDecoder} of ${framesSent} frames until more input (fewer than ${SWITCH_SLACK} expected)`);
    process.stdout.write(`# paused input: ${framesSent} frames sent, ${settled.inputFrames} decoded, ${settled.outputFrames} encoded\n`);
    await input.close();
    await session.done;
    await reading;
    await waitFor('no ffmpeg child', async () => (await ffmpegChildren()).length === 0, 5000);
  });

  it('refuses a bad start with the reason, a second stream beyond capacity with 503, and stops a stream on worker close', async () => {
    const unknownModel = await start({ model_id: 'stabilityai/sdxl-turbo' });
    assert.equal(unknownModel.status, 400);
    assert.deepEqual(await unknownModel.json(), { detail: { msg: 'pipeline configured with mediagate/cpu-filter but called with stabilityai/sdxl-turbo.' } });
    const badFilter = await start({ params: { filter: 'sepia' } });
    assert.equal(badFilter.status, 400);
    assert.match(((await badFilter.json()) as { detail: { msg: string } }).detail.msg, /params\.filter/);
    const badTint = await start({ params: { filter: 'tint', tint: { r: 300, g: 0, b: 0 } } });
    assert.equal(badTint.status, 400);
    assert.match(((await badTint.json()) as { detail: { msg: string } }).detail.msg, /params\.tint\.r/);
    const notJson = await fetch(`${worker.url}/live-video-to-video`, { method: 'POST', body: 'nope' });
    assert.equal(notJson.status, 400);

    const first = await start({ params: { filter: 'tint' } });
    assert.equal(first.status, 200);
    const reply = (await first.json()) as StartReply;
    const second = await start({});
    assert.equal(second.status, 503);
    assert.equal(second.headers.get('retry-after'), '1');
    assert.deepEqual(await second.json(), { detail: { msg: 'insufficient capacity' } });

    // Media flowing, then a stop from outside (worker shutdown path): children gone, output closed.
    const input = new TricklePublisher(reply.publish_url);
    const outputSub = new TrickleSubscriber(reply.subscribe_url, { start: 0 });
    const firstOut = outputSub.next();
    await input.write(segments[0]!.bytes);
    await input.write(segments[1]!.bytes);
    const seg = await firstOut;
    assert.ok(seg, 'output flows');
    seg.body.resume();
    const session = worker.live.sessions.get(reply.manifest_id)!;
    assert.ok((await ffmpegChildren()).length >= 2, 'decoder and encoder run');
    await session.stop('test');
    await waitFor('no ffmpeg child', async () => (await ffmpegChildren()).length === 0, 5000);
    for (;;) {
      const next = await outputSub.next();
      if (next === undefined) break;
      next.body.resume();
    }
    assert.equal(outputSub.ended, true, 'the output subscriber saw the channel close');
    assert.equal(worker.live.active, 0);
    input.destroy();
    const again = await start({});
    assert.equal(again.status, 200, 'capacity is free again');
    const r2 = (await again.json()) as StartReply;
    await new TricklePublisher(r2.publish_url).close();
    await waitFor('the idle stream to end', () => worker.live.active === 0, 10_000);
  });
});
