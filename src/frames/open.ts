/**
 * Opening tracks: one ffmpeg per open (media/raw-decoder.ts) decodes the source into a
 * {@link VideoTrack} (rawvideo on its stdout) and/or an {@link AudioTrack} (s16le on pipe 3).
 * See docs/frames.md "Reading frames".
 */
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { isValidStreamName } from '../domain/stream-name.ts';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { mpegTsStreamKinds, probeStreamKinds, startRawDecoder, type InputStreamKinds, type RawDecoder, type RawDecoderInput, type RawDecoderSpec, type ShowinfoLine } from '../media/raw-decoder.ts';
import { MediaStreamError, VIDEO_TIME_BASE, videoFrameBytes, type AudioFrame, type VideoFrame, type VideoPixelFormat } from './frame-types.ts';
import { AudioTrack, VideoTrack, type FrameFeed, type TrackOverflow } from './track.ts';

/** Where frames come from. */
export type TrackSource =
  /** A media file on disk (any container/codec ffmpeg reads). */
  | { readonly file: string }
  /** A URL ffmpeg opens itself (http(s) incl. HLS playlists, rtmp, rtsp, srt ...). */
  | { readonly url: string }
  /**
   * A live stream, read from a gateway's HLS playback (`<gateway>/stream/<manifestID>/<rendition>.m3u8`,
   * docs/wire-contract.md); any gateway of the cluster serves any stream.
   * `rendition` default `source` (the ingested picture, untranscoded).
   */
  | { readonly live: { readonly gateway: string; readonly manifestID: string; readonly rendition?: string } }
  /**
   * A recording (`<gateway>/recordings/<manifestID>/<session>/source.m3u8`); without
   * `session`, the newest finished recording of the manifest ID.
   */
  | { readonly recording: { readonly gateway: string; readonly manifestID: string; readonly session?: string } }
  /** An MPEG-TS byte stream (e.g. trickle segments concatenated); the caller keeps ownership of the stream. */
  | { readonly stream: Readable; readonly format: 'mpegts' };

export interface VideoTrackOptions {
  /** Output width in pixels; default the source's (with only `height` given: the aspect ratio is kept, even). */
  readonly width?: number;
  /** Output height in pixels; default the source's. */
  readonly height?: number;
  /** Default `yuv420p`. */
  readonly format?: VideoPixelFormat;
  /** Frames per second (ffmpeg's `fps` filter duplicates/drops to it); default the source's frames, untouched. */
  readonly frameRate?: number;
}

export interface AudioTrackOptions {
  /** Hz, a multiple of 50 (20 ms frames are whole samples); default 48000. */
  readonly sampleRate?: number;
  /** 1 to 8; default 2. */
  readonly channels?: number;
}

export interface OpenTracksOptions {
  /** `false`: no video track. Default `{}` (the source's size and frames, yuv420p). */
  readonly video?: VideoTrackOptions | false;
  /** `false`: no audio track. Default `{}` (48 kHz stereo). */
  readonly audio?: AudioTrackOptions | false;
  /** Video frames that may wait for the consumer before the oldest is dropped; default {@link DEFAULT_MAX_QUEUED_VIDEO_FRAMES}. */
  readonly maxQueuedVideoFrames?: number;
  /**
   * `drop-oldest` (default): a slow consumer loses the oldest frames (counted in
   * `droppedFrames`) and the source keeps its pace. `wait`: nothing is dropped, the decoder
   * waits for the consumer (for processing a file frame by frame).
   */
  readonly videoOverflow?: TrackOverflow;
  /** Read the source at its native rate (ffmpeg `-re`), as a live source would arrive; default false. */
  readonly realtime?: boolean;
  /** Supervisor of the ffmpeg/ffprobe children (its `close()` stops them); default one per open. */
  readonly supervisor?: ChildSupervisor;
  readonly logger?: Logger;
  /** Wall-time limit of the ffprobe run that finds the source's streams, ms; default 20000. */
  readonly probeTimeoutMs?: number;
}

/** The tracks of one open: present when requested and the source has that kind of stream. */
export interface OpenedTracks {
  readonly video?: VideoTrack;
  readonly audio?: AudioTrack;
}

/** Default bound of the video queue: 8 frames (a third of a second at 24 fps; 8 × width × height × 1.5 bytes in yuv420p). */
export const DEFAULT_MAX_QUEUED_VIDEO_FRAMES = 8;
/** Audio frames (20 ms each, 1 s in all) that may wait before the decoder is paused. */
export const MAX_QUEUED_AUDIO_FRAMES = 50;
/** The PAT/PMT of an MPEG-TS stream must be in its first bytes. */
const MAX_TS_HEAD_BYTES = 1024 * 1024;

/**
 * Opens `source` with one ffmpeg and returns its tracks.
 * @throws RangeError for bad options; MediaStreamError `MEDIA_FAILED` when the source cannot
 *   be read (ffprobe's/ffmpeg's reason), has none of the requested kinds of stream, or a
 *   recording/stream cannot be found.
 */
export async function openTracks(source: TrackSource, options: OpenTracksOptions = {}): Promise<OpenedTracks> {
  const video = options.video === false ? undefined : checkVideo(options.video ?? {});
  const audio = options.audio === false ? undefined : checkAudio(options.audio ?? {});
  const maxQueuedVideoFrames = options.maxQueuedVideoFrames ?? DEFAULT_MAX_QUEUED_VIDEO_FRAMES;
  if (!Number.isInteger(maxQueuedVideoFrames) || maxQueuedVideoFrames < 1) throw new RangeError(`maxQueuedVideoFrames must be an integer ≥ 1, got ${maxQueuedVideoFrames}`);
  if (!video && !audio) throw new RangeError('openTracks: video and audio are both false');

  let input: RawDecoderInput;
  let kinds: InputStreamKinds;
  let head: Buffer | undefined;
  if ('stream' in source) {
    if (source.format !== 'mpegts') throw new RangeError(`unsupported stream format ${String(source.format)}`);
    const sniffed = await sniffMpegTs(source.stream);
    kinds = sniffed.kinds;
    head = sniffed.head;
    input = { stdinFormat: 'mpegts' };
  } else {
    const location = await locate(source);
    try {
      kinds = await probeStreamKinds(location, { timeoutMs: options.probeTimeoutMs ?? 20_000, ...(options.supervisor ? { supervisor: options.supervisor } : {}) });
    } catch (err) {
      throw new MediaStreamError('MEDIA_FAILED', `cannot read ${describe(source)}: ${(err as Error).message}`, { cause: err });
    }
    input = { location };
  }
  const wantVideo = video !== undefined && kinds.video;
  const wantAudio = audio !== undefined && kinds.audio;
  if (!wantVideo && !wantAudio) {
    const asked = [video ? 'video' : '', audio ? 'audio' : ''].filter(Boolean).join(' or ');
    throw new MediaStreamError('MEDIA_FAILED', `${describe(source)} has no ${asked} stream`);
  }
  const spec: RawDecoderSpec = {
    input,
    ...(wantVideo ? { video: { pixelFormat: video.format, ...(video.width !== undefined ? { width: video.width } : {}), ...(video.height !== undefined ? { height: video.height } : {}), ...(video.frameRate !== undefined ? { frameRate: video.frameRate } : {}) } } : {}),
    ...(wantAudio ? { audio: { sampleRate: audio.sampleRate, channels: audio.channels } } : {}),
    ...(options.realtime ? { realtime: true } : {}),
  };
  const session = new DecodeSession(spec, {
    maxQueuedVideoFrames,
    videoOverflow: options.videoOverflow ?? 'drop-oldest',
    ...(options.supervisor ? { supervisor: options.supervisor } : {}),
    ...(options.logger ? { logger: options.logger.child({ component: 'frames' }) } : {}),
  });
  if ('stream' in source) session.feedStdin(source.stream, head!);
  return session.tracks;
}

/**
 * The video track of `source` (no audio decoded).
 * @throws as {@link openTracks}; MediaStreamError `MEDIA_FAILED` when the source has no video.
 */
export async function openVideoTrack(source: TrackSource, options: Omit<OpenTracksOptions, 'video' | 'audio'> & { video?: VideoTrackOptions } = {}): Promise<VideoTrack> {
  const { video } = await openTracks(source, { ...options, video: options.video ?? {}, audio: false });
  return video!;
}

/**
 * The audio track of `source` (no video decoded).
 * @throws as {@link openTracks}; MediaStreamError `MEDIA_FAILED` when the source has no audio.
 */
export async function openAudioTrack(source: TrackSource, options: Omit<OpenTracksOptions, 'video' | 'audio'> & { audio?: AudioTrackOptions } = {}): Promise<AudioTrack> {
  const { audio } = await openTracks(source, { ...options, video: false, audio: options.audio ?? {} });
  return audio!;
}

function checkVideo(v: VideoTrackOptions): Required<Pick<VideoTrackOptions, 'format'>> & VideoTrackOptions {
  for (const key of ['width', 'height'] as const) {
    const n = v[key];
    if (n !== undefined && (!Number.isInteger(n) || n < 2 || n > 16384)) throw new RangeError(`video.${key} must be an integer in [2, 16384], got ${n}`);
  }
  if (v.frameRate !== undefined && (!Number.isFinite(v.frameRate) || v.frameRate <= 0 || v.frameRate > 240)) throw new RangeError(`video.frameRate must be in (0, 240], got ${v.frameRate}`);
  const format = v.format ?? 'yuv420p';
  if (!['yuv420p', 'rgb24', 'rgba'].includes(format)) throw new RangeError(`video.format must be yuv420p, rgb24 or rgba, got ${String(format)}`);
  return { ...v, format };
}

function checkAudio(a: AudioTrackOptions): { sampleRate: number; channels: number } {
  const sampleRate = a.sampleRate ?? 48000;
  const channels = a.channels ?? 2;
  if (!Number.isInteger(sampleRate) || sampleRate < 8000 || sampleRate > 192000 || sampleRate % 50 !== 0) throw new RangeError(`audio.sampleRate must be an integer in [8000, 192000] and a multiple of 50, got ${sampleRate}`);
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) throw new RangeError(`audio.channels must be an integer in [1, 8], got ${channels}`);
  return { sampleRate, channels };
}

function describe(source: TrackSource): string {
  if ('file' in source) return `file ${source.file}`;
  if ('url' in source) return 'the URL';
  if ('live' in source) return `live stream ${source.live.manifestID}`;
  if ('recording' in source) return `recording of ${source.recording.manifestID}`;
  return 'the MPEG-TS stream';
}

function gatewayBase(gateway: string): string {
  let url: URL;
  try {
    url = new URL(gateway);
  } catch {
    throw new RangeError(`gateway must be an http(s) URL such as http://127.0.0.1:8935, got ${gateway}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`gateway must be an http(s) URL, got ${gateway}`);
  return url.href.replace(/\/+$/, '');
}

function checkName(what: string, name: string | undefined): string {
  if (!isValidStreamName(name)) throw new RangeError(`${what} must match [A-Za-z0-9_-]+, got ${String(name)}`);
  return name!;
}

/** The path or URL ffmpeg reads for a non-stream source. */
async function locate(source: Exclude<TrackSource, { stream: Readable }>): Promise<string> {
  // `file:` so that a path with a colon is not taken for a protocol.
  if ('file' in source) return `file:${resolvePath(source.file)}`;
  if ('url' in source) return source.url;
  if ('live' in source) {
    const { gateway, manifestID, rendition } = source.live;
    return `${gatewayBase(gateway)}/stream/${checkName('manifestID', manifestID)}/${checkName('rendition', rendition ?? 'source')}.m3u8`;
  }
  const { gateway, manifestID, session } = source.recording;
  const base = `${gatewayBase(gateway)}/recordings/${checkName('manifestID', manifestID)}`;
  if (session !== undefined) return `${base}/${checkName('session', session)}/source.m3u8`;
  // The newest recording's master lists `<session>/<rendition>.m3u8`: take its source rendition.
  let master: string;
  try {
    const res = await fetch(`${base}/index.m3u8`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    master = await res.text();
  } catch (err) {
    throw new MediaStreamError('MEDIA_FAILED', `no finished recording of ${manifestID} at ${gatewayBase(gateway)}: ${(err as Error).message}`, { cause: err });
  }
  const uris = master.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const uri = uris.find((u) => u.endsWith('/source.m3u8')) ?? uris[0];
  if (uri === undefined) throw new MediaStreamError('MEDIA_FAILED', `the recording master of ${manifestID} lists no rendition`);
  return new URL(uri, `${base}/index.m3u8`).href;
}

/** Reads the head of an MPEG-TS stream until its PAT/PMT tell which streams it has; the stream is left paused. */
function sniffMpegTs(stream: Readable): Promise<{ kinds: InputStreamKinds; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const finish = (err: MediaStreamError | undefined, kinds?: InputStreamKinds): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      if (err) reject(err);
      else resolve({ kinds: kinds!, head: Buffer.concat(chunks, bytes) });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      bytes += chunk.length;
      let kinds: InputStreamKinds | undefined;
      try {
        kinds = mpegTsStreamKinds(Buffer.concat(chunks, bytes));
      } catch (err) {
        finish(new MediaStreamError('MEDIA_FAILED', `the stream is not MPEG-TS: ${(err as Error).message}`, { cause: err }));
        return;
      }
      if (kinds) finish(undefined, kinds);
      else if (bytes > MAX_TS_HEAD_BYTES) finish(new MediaStreamError('MEDIA_FAILED', `no PAT/PMT in the first ${MAX_TS_HEAD_BYTES} bytes of the MPEG-TS stream`));
    };
    const onEnd = (): void => finish(new MediaStreamError('MEDIA_FAILED', 'the MPEG-TS stream ended before its PAT/PMT'));
    const onError = (err: Error): void => finish(new MediaStreamError('MEDIA_FAILED', `the MPEG-TS stream failed: ${err.message}`, { cause: err }));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

interface DecodeSessionOptions {
  readonly maxQueuedVideoFrames: number;
  readonly videoOverflow: TrackOverflow;
  readonly supervisor?: ChildSupervisor;
  readonly logger?: Logger;
}

/** Pending video frame metadata from showinfo, waiting for its bytes on stdout. */
interface VideoMeta {
  readonly pts: number;
  readonly width: number;
  readonly height: number;
}

/**
 * One ffmpeg and the tracks it feeds. ffmpeg is stopped when every track of the open was
 * stopped; a stopped track's frames are read and discarded while another still wants its own.
 */
class DecodeSession {
  readonly tracks: OpenedTracks;
  readonly #decoder: RawDecoder;
  readonly #spec: RawDecoderSpec;
  readonly #logger: Logger | undefined;
  #videoFeed: FrameFeed<VideoFrame> | undefined;
  #audioFeed: FrameFeed<AudioFrame> | undefined;
  #liveTracks = 0;
  #stopRequested = false;
  #stopping: Promise<void> | undefined;
  #stdinSource: Readable | undefined;
  #streamFailure: string | undefined;
  // video assembly
  readonly #videoMeta: VideoMeta[] = [];
  #lastVideoPts: number | undefined;
  #lastVideoStepPts = 0;
  readonly #videoChunks: Buffer[] = [];
  #videoBytes = 0;
  // audio assembly
  #audioFirstPts: number | undefined;
  #audioSamplesOut = 0;
  readonly #audioPending: Buffer[] = [];
  #audioRemainder: Buffer = Buffer.alloc(0);

  constructor(spec: RawDecoderSpec, options: DecodeSessionOptions) {
    this.#spec = spec;
    this.#logger = options.logger;
    this.#decoder = startRawDecoder(spec, {
      onShowinfo: (line) => this.#onShowinfo(line),
      ...(options.supervisor ? { supervisor: options.supervisor } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const stop = (): Promise<void> => this.#release();
    let video: VideoTrack | undefined;
    let audio: AudioTrack | undefined;
    if (spec.video && this.#decoder.video) {
      const out = this.#decoder.video;
      video = new VideoTrack({
        producer: { stop, pause: () => out.pause(), resume: () => out.resume() },
        maxQueued: options.maxQueuedVideoFrames,
        overflow: options.videoOverflow,
        attach: (feed) => (this.#videoFeed = feed),
      });
      out.on('data', (chunk: Buffer) => this.#onVideoBytes(chunk));
      this.#liveTracks++;
    }
    if (spec.audio && this.#decoder.audio) {
      const out = this.#decoder.audio;
      audio = new AudioTrack({
        producer: { stop, pause: () => out.pause(), resume: () => out.resume() },
        maxQueued: MAX_QUEUED_AUDIO_FRAMES,
        overflow: 'wait',
        attach: (feed) => (this.#audioFeed = feed),
      });
      out.on('data', (chunk: Buffer) => this.#onAudioBytes(chunk));
      this.#liveTracks++;
    }
    this.tracks = { ...(video ? { video } : {}), ...(audio ? { audio } : {}) };
    void this.#decoder.exited.then((exit) => {
      this.#stdinSource?.unpipe();
      let failure: MediaStreamError | undefined;
      if (this.#stopRequested) failure = undefined;
      else if (exit.spawnError) failure = new MediaStreamError('MEDIA_FAILED', `ffmpeg could not be started: ${exit.spawnError.message}`);
      else if (this.#streamFailure) failure = new MediaStreamError('MEDIA_FAILED', this.#streamFailure);
      else if (exit.code === 0 && this.#decoder.inputLost()) {
        failure = new MediaStreamError('MEDIA_FAILED', `the HLS playlist could not be reloaded (server gone or answering errors): ${this.#decoder.reason()}`);
      } else if (exit.code !== 0) {
        const how = exit.code === null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        const reason = this.#decoder.reason();
        failure = new MediaStreamError('MEDIA_FAILED', `ffmpeg ${how}${reason ? `: ${reason}` : ''}`);
      }
      this.#flushAudio(true);
      if (this.#videoBytes > 0 || this.#videoMeta.length > 0) this.#logger?.warn({ bytes: this.#videoBytes, pendingFrames: this.#videoMeta.length }, 'raw decoder ended with an incomplete video frame');
      this.#videoFeed?.end(failure);
      this.#audioFeed?.end(failure);
    });
  }

  /** Writes the already-read `head`, then the rest of `stream`, to ffmpeg's stdin. */
  feedStdin(stream: Readable, head: Buffer): void {
    const stdin = this.#decoder.stdin!;
    this.#stdinSource = stream;
    stdin.on('error', () => undefined); // EPIPE once ffmpeg has exited: its exit status tells.
    stream.once('error', (err) => {
      this.#streamFailure = `the MPEG-TS stream failed: ${err.message}`;
      void this.#decoder.stop();
    });
    stdin.write(head);
    stream.pipe(stdin);
    stream.resume();
  }

  #release(): Promise<void> {
    this.#liveTracks--;
    if (this.#liveTracks > 0) return Promise.resolve();
    this.#stopRequested = true;
    this.#stdinSource?.unpipe();
    this.#stopping ??= this.#decoder.stop().then(() => undefined);
    return this.#stopping;
  }

  #onShowinfo(line: ShowinfoLine): void {
    if (line.kind === 'audio') {
      if (this.#audioFirstPts === undefined) {
        this.#audioFirstPts = line.pts ?? 0;
        this.#flushAudio(false);
      }
      return;
    }
    let pts = line.pts;
    if (pts === undefined) pts = (this.#lastVideoPts ?? 0) + this.#lastVideoStepPts;
    if (this.#lastVideoPts !== undefined) this.#lastVideoStepPts = pts - this.#lastVideoPts;
    this.#lastVideoPts = pts;
    const v = this.#spec.video!;
    this.#videoMeta.push({ pts, width: line.width ?? v.width ?? 0, height: line.height ?? v.height ?? 0 });
    this.#cutVideo();
  }

  #onVideoBytes(chunk: Buffer): void {
    this.#videoChunks.push(chunk);
    this.#videoBytes += chunk.length;
    this.#cutVideo();
  }

  /** Pairs the n-th showinfo line with the n-th frame of bytes on stdout. */
  #cutVideo(): void {
    const format = this.#spec.video!.pixelFormat as VideoPixelFormat;
    for (;;) {
      const meta = this.#videoMeta[0];
      if (!meta) return;
      const size = videoFrameBytes(meta.width, meta.height, format);
      if (this.#videoBytes < size) return;
      this.#videoMeta.shift();
      const data = this.#take(size);
      if (this.#videoFeed?.wanted) {
        this.#videoFeed.push({ kind: 'video', width: meta.width, height: meta.height, format, data, pts: meta.pts, timeBase: VIDEO_TIME_BASE });
      }
    }
  }

  #take(size: number): Buffer {
    const first = this.#videoChunks[0]!;
    if (first.length === size) {
      this.#videoChunks.shift();
      this.#videoBytes -= size;
      return first;
    }
    const out = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.#videoChunks[0]!;
      const n = Math.min(chunk.length, size - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.#videoChunks.shift();
      else this.#videoChunks[0] = chunk.subarray(n);
    }
    this.#videoBytes -= size;
    return out;
  }

  #onAudioBytes(chunk: Buffer): void {
    this.#audioPending.push(chunk);
    this.#flushAudio(false);
  }

  /** Cuts the received s16le bytes into 20 ms frames (once the first pts is known; at the end, the rest as a shorter frame). */
  #flushAudio(atEnd: boolean): void {
    const a = this.#spec.audio;
    if (!a || !this.#audioFeed) return;
    if (this.#audioFirstPts === undefined) {
      if (!atEnd) return;
      this.#audioFirstPts = 0;
    }
    if (this.#audioPending.length > 0) {
      this.#audioRemainder = Buffer.concat([this.#audioRemainder, ...this.#audioPending]);
      this.#audioPending.length = 0;
    }
    const bytesPerSample = a.channels * 2;
    const frameSamples = a.sampleRate / 50;
    const frameBytes = frameSamples * bytesPerSample;
    let offset = 0;
    const emit = (bytes: number): void => {
      const samples = bytes / bytesPerSample;
      const data = Buffer.from(this.#audioRemainder.subarray(offset, offset + bytes));
      offset += bytes;
      if (this.#audioFeed!.wanted) {
        this.#audioFeed!.push({ kind: 'audio', sampleRate: a.sampleRate, channels: a.channels, samplesPerChannel: samples, format: 's16', data, pts: this.#audioFirstPts! + this.#audioSamplesOut, timeBase: { num: 1, den: a.sampleRate } });
      }
      this.#audioSamplesOut += samples;
    };
    while (this.#audioRemainder.length - offset >= frameBytes) emit(frameBytes);
    if (atEnd) {
      const rest = this.#audioRemainder.length - offset;
      const whole = rest - (rest % bytesPerSample);
      if (whole > 0) emit(whole);
      offset = this.#audioRemainder.length;
    }
    this.#audioRemainder = this.#audioRemainder.subarray(offset);
  }
}
