/**
 * A light RTMP load generator for benchmarks: one process publishing many streams of the
 * same FLV file in real time, like N × `ffmpeg -re -stream_loop -1 -i clip -c copy -f flv url`
 * but without a process (≈0.11 CPU s of start-up and ≈7 millicores each, measured on the
 * 2-core bench machine) per stream. Started by bench/lib/publisher-pool.ts with the FLV path
 * as its argument and an IPC channel.
 *
 * RTMP client: node-media-server 4.4.3's own (`src/protocol/rtmp_client.js`: simple
 * handshake, connect, createStream, publish); media messages are the FLV tag bodies chunked
 * once by its `Rtmp.createMessage` (type and timestamp of the tag, chunk size 0xffff as the
 * client announces in connect) with the message stream id of the publish patched in, and
 * written to every stream's socket. Each stream's clock starts when the server answered
 * NetStream.Publish.Start (ffmpeg's `-re` clock starts at the same point: connected, FLV
 * header written); every 10 ms the tags whose DTS has come are written, and each tag's send
 * lag (written − due) goes into a 1 ms histogram, so the parent can tell whether this
 * generator kept real time.
 *
 * IPC in: `{ op: 'start', name, url }`, `{ op: 'stats' }`, `{ op: 'stop' }` (closes every stream).
 * IPC out: `{ ev: 'ready' }`, `{ ev: 'started', name, epochMs }`, `{ ev: 'exited', name, error?, epochMs }`,
 * `{ ev: 'stats', … }` (see PoolStats in publisher-pool.ts).
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { readFlvFile } from './flv-file.ts';

interface RtmpClientLike {
  socket: { write(b: Buffer): boolean; destroy(): void; writableLength: number } | null;
  streamId: number;
  urlInfo: { streamName: string } | null;
  onCloseCallback: (hadError: boolean) => void;
  onErrorCallback: (err: Error) => void;
  connect(url: string): Promise<void>;
  sendConnect(): Promise<unknown>;
  sendCreateStream(): Promise<unknown>;
  sendPublish(name: string): Promise<unknown>;
  disconnect(): void;
}
interface RtmpStatic { createMessage(p: { codec_type: number; dts: number; size: number; data: Buffer }): Buffer }

const require = createRequire(import.meta.url);
const RtmpClient = require('node-media-server/src/protocol/rtmp_client.js') as new () => RtmpClientLike;
const Rtmp = require('node-media-server/src/protocol/rtmp.js') as RtmpStatic;

const flvPath = process.argv[2];
if (!flvPath || !process.send) throw new Error('usage: started by bench/lib/publisher-pool.ts with an IPC channel and the FLV path');
const send = (m: Record<string, unknown>): void => { process.send!(m); };
const clip = readFlvFile(flvPath);
/** `@setDataFrame` (AMF0 string) before the file's onMetaData, as ffmpeg's FLV-over-RTMP sends it. */
const SET_DATA_FRAME = Buffer.from([0x02, 0x00, 0x0d, ...Buffer.from('@setDataFrame', 'latin1')]);

/** The message stream id of an RTMP type-0 chunk with a one-byte basic header sits at bytes 8-11 (LE). */
function chunked(type: number, tsMs: number, body: Buffer, streamId: number): Buffer {
  const data = type === 18 ? Buffer.concat([SET_DATA_FRAME, body]) : body;
  const out = Rtmp.createMessage({ codec_type: type, dts: tsMs, size: data.length, data });
  out.writeUInt32LE(streamId, 8);
  return out;
}
/** The first loop's messages, chunked once per message stream id (the same for every stream in practice). */
const firstLoop = new Map<number, Buffer[]>();
function messagesFor(streamId: number): Buffer[] {
  let m = firstLoop.get(streamId);
  if (!m) {
    m = clip.tags.map((t) => chunked(t.type, t.tsMs, t.body, streamId));
    firstLoop.set(streamId, m);
  }
  return m;
}

interface Live { name: string; client: RtmpClientLike; startMs: number; next: number; loop: number; messages: Buffer[]; closed: boolean }
const live = new Map<string, Live>();
const lagHistogram = new Uint32Array(10_001); // 1 ms buckets, the last one is ≥ 10 s
let tagsSent = 0;
let bytesSent = 0;
let maxBufferedBytes = 0;

async function start(name: string, url: string): Promise<void> {
  const client = new RtmpClient();
  let done = false;
  const exited = (error?: string): void => {
    if (done) return;
    done = true;
    const l = live.get(name);
    if (l) l.closed = true;
    live.delete(name);
    send({ ev: 'exited', name, error, epochMs: performance.timeOrigin + performance.now() });
  };
  client.onCloseCallback = () => exited('connection closed');
  client.onErrorCallback = (err) => exited(err.message);
  try {
    await client.connect(url);
    await client.sendConnect();
    await client.sendCreateStream();
    await client.sendPublish(client.urlInfo!.streamName);
  } catch (err) {
    exited((err as Error).message);
    client.disconnect();
    return;
  }
  if (done) return;
  const startMs = performance.now();
  live.set(name, { name, client, startMs, next: 0, loop: 0, messages: messagesFor(client.streamId), closed: false });
  send({ ev: 'started', name, epochMs: performance.timeOrigin + startMs });
  tick();
}

function tick(): void {
  const now = performance.now();
  for (const l of live.values()) {
    const socket = l.client.socket;
    if (!socket || l.closed) continue;
    const elapsed = now - l.startMs;
    const parts: Buffer[] = [];
    for (;;) {
      const tag = clip.tags[l.next]!;
      const due = l.loop * clip.durationMs + tag.tsMs;
      if (due > elapsed) break;
      lagHistogram[Math.min(10_000, Math.floor(elapsed - due))]! += 1;
      parts.push(l.loop === 0 ? l.messages[l.next]! : chunked(tag.type, due, tag.body, l.client.streamId));
      l.next += 1;
      if (l.next === clip.tags.length) { l.next = 0; l.loop += 1; }
    }
    if (parts.length === 0) continue;
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    tagsSent += parts.length;
    bytesSent += data.length;
    socket.write(data);
    maxBufferedBytes = Math.max(maxBufferedBytes, socket.writableLength);
  }
}

function quantile(p: number): number | undefined {
  const total = lagHistogram.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  let seen = 0;
  for (let i = 0; i < lagHistogram.length; i++) {
    seen += lagHistogram[i]!;
    if (seen >= total * p) return i;
  }
  return lagHistogram.length - 1;
}

setInterval(tick, 10);
process.on('message', (m: { op: string; name?: string; url?: string }) => {
  if (m.op === 'start') void start(m.name!, m.url!);
  else if (m.op === 'stats') {
    let max = 0;
    for (let i = lagHistogram.length - 1; i >= 0; i--) if (lagHistogram[i]! > 0) { max = i; break; }
    send({ ev: 'stats', tags: tagsSent, bytes: bytesSent, lagP50Ms: quantile(0.5), lagP99Ms: quantile(0.99), lagMaxMs: max, over100Ms: lagHistogram.slice(100).reduce((a, b) => a + b, 0), maxBufferedBytes, streams: live.size });
  } else if (m.op === 'stop') {
    for (const l of live.values()) { l.closed = true; l.client.socket?.destroy(); }
    live.clear();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ ev: 'ready', firstKeyframePtsMs: clip.firstKeyframePtsMs, tags: clip.tags.length });
