/**
 * The mediagate configuration's one declaration (TypeBox, see src/config/settings.ts): the
 * schema below gives the TypeScript type ({@link MediagateConfig}), the defaults, the JSON
 * Schema Ajv checks ({@link CONFIG_SCHEMA}), the environment variable names and the
 * generated reference docs/config.md. Each field's `description` is its documentation.
 * Loading, validating and the rules across fields are in config.ts.
 *
 * Environment names are derived from the field path: each camelCase segment becomes
 * SCREAMING_SNAKE, joined with `_`, e.g. `http.port` → `MEDIAGATE_HTTP_PORT`,
 * `transcode.x264Preset` → `MEDIAGATE_TRANSCODE_X264_PRESET`. Arrays and objects take JSON;
 * arrays of strings also take a comma-separated list.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_X264_PRESET, LIVE_ENCODER_TUNINGS, X264_PRESETS } from '../domain/x264-preset.ts';
import { WATERMARK_DEFAULTS, WATERMARK_POSITIONS } from '../domain/watermark.ts';
import { LOG_FORMATS, LOG_LEVELS, StringEnum } from './settings.ts';

/** Prefix of every gateway and transcoder environment variable. */
export const ENV_PREFIX = 'MEDIAGATE_';

/**
 * The default ladder, chosen by measurement on a 2-core machine: from a 1080p30 source,
 * 720p30 + 360p30 + 240p30 at x264 `veryfast` encode at about 2x real time in one ffmpeg
 * process (see the closing note of issue 2 and bench/README.md).
 */
export const DEFAULT_LADDER = ['P720p30fps16x9', 'P360p30fps16x9', 'P240p30fps16x9'];

const NAME = '^[A-Za-z0-9_-]{1,64}$';
const HTTP_URL = '^https?://[^\\s]+$';
const HTTP_URL_OR_EMPTY = '^(https?://[^\\s]+)?$';
/** A ladder entry: a Livepeer preset name or a Livepeer JSON profile object. */
const LadderEntry = Type.Unsafe<unknown>({ anyOf: [{ type: 'string' }, { type: 'object' }] });

const StreamKeySchema = Type.Object({
  streamKey: Type.String({ pattern: NAME, description: 'Secret used to publish: `rtmp://host/live/<streamKey>`. Never logged or shown in URLs.' }),
  manifestID: Type.String({ pattern: NAME, description: 'Public ID used in playback URLs.' }),
  profiles: Type.Optional(Type.Array(Type.Unknown(), { description: 'Optional per-stream ladder (preset names or Livepeer JSON profiles); default: `ladder`. Fitted to the source like `ladder` (`ladderFitsSource`).' })),
  accountID: Type.Optional(Type.String({
    pattern: NAME,
    description: 'Optional account charged for this key\'s transcoding (created with `POST /api/accounts`; '
      + 'a publish is refused while it is missing or empty). Without one, the stream is charged '
      + 'to the `local` account on a loopback bind and is not metered on any other bind.',
  })),
  record: Type.Optional(Type.Boolean({
    description: 'Record this key\'s streams (true) or not (false), overriding `recording.enabled`.',
  })),
  watermark: Type.Optional(Type.Unknown({
    description: 'This key\'s watermark, overriding `watermark.*`: an object with the fields of `watermark` '
      + '(`image` or `imageKey` or `text`, `position`, `marginPx` or `marginFraction`, `widthFraction`, `fontSizeFraction`, `opacity`, `applyToSource`), '
      + 'or `false` for none. Checked at startup.',
  })),
  outputs: Type.Optional(Type.Array(Type.Object({
    url: Type.String({ minLength: 1, description: 'Target: `rtmp://`, `rtmps://` or `srt://` URL (a secret: shown redacted).' }),
    rendition: Type.Optional(Type.String({ description: '`source` (default) or a profile name of the stream\'s ladder.' })),
  }, { additionalProperties: false }), {
    description: 'Restream outputs started with every stream of this key, after `outputs.defaults` (see `outputs`).',
  })),
}, { additionalProperties: false });

const AiWorkerSchema = Type.Object({
  url: Type.String({ pattern: HTTP_URL, description: 'Base URL of an ai-runner compatible worker, e.g. http://gpu-1:8000.' }),
  token: Type.Optional(Type.String({ description: 'Bearer token the worker expects, if any. Never logged or returned.' })),
  pipelines: Type.Array(Type.Object({
    pipeline: Type.String({ description: 'Pipeline the worker serves, e.g. `text-to-image`.' }),
    model_id: Type.String({ minLength: 1, description: 'Model ID the worker serves for that pipeline.' }),
    warm: Type.Optional(Type.Boolean({ description: 'Model loaded and ready: warm workers are preferred over cold ones.' })),
    capacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'Requests the worker runs at once for this model.' })),
  }, { additionalProperties: false }), { minItems: 1, description: 'What the worker serves: (pipeline, model_id) pairs.' }),
}, { additionalProperties: false });

const AiPriceSchema = Type.Object({
  pipeline: Type.String({ minLength: 1, description: 'Pipeline name; `*` matches any pipeline.' }),
  model_id: Type.String({ minLength: 1, description: 'Model ID; `*` matches any model.' }),
  pricePerUnit: Type.Integer({ minimum: 0, description: 'Credits charged per `pixelsPerUnit` units.' }),
  pixelsPerUnit: Type.Integer({ minimum: 1, description: 'Units (pixels, ms of audio, tokens or characters, by pipeline) per `pricePerUnit` credits.' }),
}, { additionalProperties: false });

/** The whole gateway and transcoder configuration: one declaration (type, defaults, JSON Schema, docs). */
export const CONFIG_SCHEMA = Type.Object({
  http: Type.Object({
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Bind address; default 127.0.0.1 (loopback).' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9935, description: 'Default 9935 (Livepeer\'s gateway HTTP port).' }),
    publicUrl: Type.String({
      pattern: HTTP_URL_OR_EMPTY, default: '',
      description: 'Base URL for playback links and AI result URLs; default `http://<host>:<port>` (0.0.0.0 shown as 127.0.0.1).',
    }),
    maxBodyBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024, description: 'Largest pushed segment or request body accepted, in bytes.' }),
    adminToken: Type.String({ default: '', description: 'Bearer token for the control API (`/api/*`); required when `host` is not loopback.' }),
    allowedHosts: Type.Array(Type.String({ pattern: '^(\\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\\[?[0-9A-Fa-f:.]+\\]?)$' }), {
      default: [],
      description: 'Host names (no port; `.example.com` = the domain and its subdomains) the gateway '
        + 'answers to besides loopback names, the bind address and the host of `publicUrl`. '
        + 'Checked against the `Host` header (DNS rebinding guard, src/http/request-guard.ts) '
        + 'on a loopback bind, and on any bind once set. Default [] (none).',
    }),
  }, { additionalProperties: false, default: {} }),
  rtmp: Type.Object({
    enabled: Type.Boolean({ default: true, description: 'Accept RTMP publishing.' }),
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'RTMP bind address; default 127.0.0.1 (loopback).' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 1935, description: 'Default 1935.' }),
  }, { additionalProperties: false, default: {} }),
  redis: Type.Object({
    url: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379', description: 'Redis URL; default redis://127.0.0.1:6379.' }),
    keyPrefix: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$', default: 'mg', description: 'Key prefix so several deployments can share one Redis.' }),
    mediaRetryBudgetMs: Type.Integer({
      minimum: 1000, maximum: 3_600_000, default: 30_000,
      description: 'How long the media path (listing and queueing a source segment, recording a transcode '
        + 'result, billing it, ending a stream) retries across a Redis outage before that work is '
        + 'given up and its segment resolved as failed, in ms, counted from when the segment was '
        + 'ready; default 30000. Segments waiting meanwhile stay on local disk, at most this long plus '
        + 'one Redis attempt (an attempt under way is not cut short: up to ~8 s, see redis/retry.ts).',
    }),
  }, { additionalProperties: false, default: {} }),
  storage: Type.Object({
    kind: StringEnum(['fs', 's3'], {
      default: 'fs',
      description: 'Object store for segments and AI results: `fs`, a local directory (`storage.dir`), or `s3`, a bucket '
        + 'on AWS S3 or an S3-compatible service such as MinIO, Ceph RGW or R2 (`storage.s3.*`; credentials from the '
        + 'standard AWS chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role). Every '
        + 'gateway and transcoder of a deployment must use the same store; several hosts need `s3`.',
    }),
    dir: Type.String({ minLength: 1, default: './data/objects', description: 'Root directory of the filesystem object store.' }),
    publicBaseUrl: Type.String({
      pattern: HTTP_URL_OR_EMPTY, default: '',
      description: 'When set, media playlists list each segment at `<publicBaseUrl>/<key>` (key = '
        + '`<manifestID>/<session>/<rendition>/<seq>.ts`) instead of through the gateway, so players fetch segment bytes '
        + 'from a CDN or the bucket itself: e.g. `https://cdn.example.com/live` in front of the bucket and '
        + 'prefix, or the bucket\'s own public URL with the prefix (`http://minio:9000/<bucket>/<prefix>`). '
        + 'The objects must be readable there. Default empty: segments are served by the gateway.',
    }),
    outageBudgetMs: Type.Integer({
      minimum: 1000, maximum: 3_600_000, default: 30_000,
      description: 'How long the media path retries an object-store write or read across a store outage (S3 '
        + 'unreachable, 5xx, timeouts, a full disk), in ms, above the SDK\'s own tries per request: an RTMP source '
        + 'segment from when it was cut, a transcode job from when it started. Segments behind a waiting one stay on '
        + 'local disk in order; nothing is listed before its object is stored. Past it the stream ends with reason '
        + '"object store unavailable". Default 30000 (three times a 10 s outage). 4xx answers (access denied) are not retried.',
    }),
    maxBufferedSegments: Type.Integer({
      minimum: 1, maximum: 10_000, default: 30,
      description: 'Most RTMP source segments one stream may hold on local disk while the object store does not '
        + 'answer (about bitrate × 2 s each); one more ends the stream with reason "object store unavailable". Default 30 '
        + '(one minute of 2 s segments, above what storage.outageBudgetMs lets pile up).',
    }),
    s3: Type.Object({
      endpoint: Type.String({
        pattern: '^(https?://[^\\s/@]+(/[^\\s@]*)?)?$', default: '',
        description: 'Endpoint URL of an S3-compatible service, e.g. `http://127.0.0.1:9000` (MinIO); empty = AWS S3 '
          + 'in `region`. No credentials in it (they come from the AWS chain).',
      }),
      bucket: Type.String({
        pattern: '^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$', default: '',
        description: 'Bucket name (3-63 of `a-z0-9.-`); required with kind `s3`. It must exist: mediagate checks it at startup.',
      }),
      region: Type.String({ pattern: '^[a-z0-9-]{1,32}$', default: 'us-east-1', description: 'Region of the bucket (SigV4 signing region). Default us-east-1, which MinIO and most self-hosted stores accept.' }),
      forcePathStyle: Type.Boolean({
        default: false,
        description: 'Address the bucket in the path (`<endpoint>/<bucket>/<key>`) instead of a host name '
          + '(`<bucket>.<endpoint host>`): needed by MinIO, Ceph RGW and most self-hosted stores unless DNS is set up for buckets.',
      }),
      prefix: Type.String({
        pattern: '^([A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*/?)?$', default: '',
        description: 'Key prefix inside the bucket, e.g. `mediagate` (a trailing `/` is added), so one bucket can hold '
          + 'several deployments or other data. Default empty: keys at the bucket root.',
      }),
      maxAttempts: Type.Integer({
        minimum: 1, maximum: 20, default: 5,
        description: 'Tries per S3 request, the first included, for 5xx answers, throttling, timeouts and connection errors '
          + '(the AWS SDK\'s retry strategy: exponential backoff with jitter, base 100 ms, at most 20 s). Default 5.',
      }),
      retryMode: StringEnum(['standard', 'adaptive'], {
        default: 'standard', description: 'AWS SDK retry mode: `standard`, or `adaptive` (also slows requests down while the store throttles).',
      }),
      connectTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 3000, description: 'Connect timeout of one S3 request, in ms. Default 3000.' }),
      requestTimeoutMs: Type.Integer({
        minimum: 500, maximum: 600_000, default: 30_000,
        description: 'Time one S3 request attempt may take until the answer\'s headers arrive (an upload part is sent '
          + 'within it), and the longest a connection may sit idle mid-transfer, in ms; then the attempt fails and is retried. Default 30000.',
      }),
    }, { additionalProperties: false, default: {} }),
  }, { additionalProperties: false, default: {} }),
  workDir: Type.String({ minLength: 1, default: './data/work', description: 'Scratch directory for segmenter and transcoder temp files.' }),
  transcode: Type.Object({
    embedded: Type.Boolean({ default: true, description: 'Run a transcoder worker inside the gateway process (the `make run` default).' }),
    concurrency: Type.Integer({
      minimum: 1, maximum: 64, default: 2,
      description: 'Jobs one transcoder process runs at once; default 2. Measured on 2 cores with a '
        + '1080p30 source and the default ladder (SegmentTranscoder alone): 1 in flight reaches '
        + '1.15x real time, 2 reach 1.42x, because each per-segment ffmpeg idles cores while its '
        + 'encoders fill and drain, and no ffmpeg runs while a job probes and stores. Through the '
        + 'whole pipeline: bench/throughput.ts `--processes 1 --concurrency N`.',
    }),
    x264Preset: StringEnum(X264_PRESETS, { default: DEFAULT_X264_PRESET, description: 'libx264 preset for renditions.' }),
    timeoutMs: Type.Integer({ minimum: 1000, default: 60_000, description: 'Wall-clock limit for one segment\'s ffmpeg, in ms.' }),
    attempts: Type.Integer({ minimum: 1, maximum: 20, default: 3, description: 'Tries per job before it is failed for good.' }),
    backoffMs: Type.Integer({ minimum: 0, default: 500, description: 'First retry delay in ms (exponential backoff).' }),
    liveSessions: Type.Boolean({
      default: true,
      description: 'Transcode an RTMP stream whose ladder is all H.264 with one long-running ffmpeg on one transcoder '
        + '(a live session fed from Redis, leased to a transcoder with a free slot and taken over when it dies; '
        + 'a session and a running job each take one of the `transcode.concurrency` slots); false: one job per '
        + 'source segment, as HTTP push always does. Gateways and transcoders of a deployment must agree. '
        + 'See docs/architecture.md, Live transcoding sessions.',
    }),
    liveEncoderTuning: StringEnum(LIVE_ENCODER_TUNINGS, {
      default: 'latency',
      description: 'How a live session\'s ladder tunes its decoder and x264 encoders: `latency` (default): 2 threads each and short '
        + 'lookaheads, each rendition segment out 11 frames after its source segment; `throughput`: ffmpeg\'s and x264\'s own '
        + 'threads and lookaheads, 23 frames (+0.4 s at 30 fps) but about 7 % more throughput on a 2-core transcoder (median) '
        + '(bench/README.md, Eighth round). Read by transcoders.',
    }),
    metricsPort: Type.Integer({
      minimum: 0, maximum: 65535, default: 9936,
      description: 'HTTP port of a standalone transcoder (cmd/transcoder.ts) for `/metrics` and `/healthz`, '
        + 'bound to `http.host`; default 9936; 0 = none.',
    }),
  }, { additionalProperties: false, default: {} }),
  ladder: Type.Array(LadderEntry, { maxItems: 16, default: DEFAULT_LADDER, description: 'Default ladder: preset names or Livepeer JSON profile objects; fitted to each stream\'s source (`ladderFitsSource`); '
    + 'a ladder the auth webhook or the push header sets is used as configured.' }),
  ladderFitsSource: Type.Boolean({
    default: true,
    description: 'Fit `ladder` and stream keys\' `profiles` to each stream\'s source on its first segment (docs/wire-contract.md §3): '
      + 'leave out a rendition of the source\'s own size, cap each rendition\'s bitrate at its share of the source\'s pixels '
      + '(source bitrate measured on the first segment). An RTMP stream\'s live ladder then starts when that segment closes. '
      + 'false: every ladder is used as configured, only upscales omitted (the behaviour before; its live ladder starts at the stream\'s first frames).',
  }),
  segmentTargetMs: Type.Integer({
    minimum: 500, maximum: 20_000, default: 2000,
    description: 'Target source segment duration in ms; segments are cut at the first keyframe after it.',
  }),
  hls: Type.Object({
    windowSegments: Type.Integer({ minimum: 2, maximum: 1000, default: 6, description: 'Segments in a live media playlist\'s sliding window.' }),
    maxSegmentWaitMs: Type.Integer({
      minimum: 500, maximum: 600_000, default: 10_000,
      description: 'Longest a rendition\'s playlist waits for one missing segment once a later one is ready, '
        + 'in ms; the missing one is then skipped with EXT-X-DISCONTINUITY (and not charged if it '
        + 'comes later). Also how long an ended stream waits for its last transcodes before its '
        + 'playlists get EXT-X-ENDLIST. Default 10000: 5 segment durations, above a crashed '
        + 'transcoder\'s takeover (about 2 segment durations) plus one transcode on a busy host.',
    }),
    heartbeatIntervalMs: Type.Integer({
      minimum: 100, maximum: 60_000, default: 2000,
      description: 'How often a gateway renews the heartbeat of each live stream it holds, in ms. Default 2000.',
    }),
    heartbeatTtlMs: Type.Integer({
      minimum: 500, maximum: 600_000, default: 10_000,
      description: 'A live stream whose gateway has not renewed its heartbeat for this long (the gateway '
        + 'died) is ended by any gateway\'s sweep, in ms; must exceed heartbeatIntervalMs. Default 10000.',
    }),
    sweepIntervalMs: Type.Integer({
      minimum: 100, maximum: 60_000, default: 1000,
      description: 'How often each gateway runs the segment-index sweep (overdue segments, expired heartbeats), in ms. Default 1000.',
    }),
  }, { additionalProperties: false, default: {} }),
  playlistCache: Type.Object({
    maxAgeMs: Type.Integer({
      minimum: 0, maximum: 10_000, default: 2000,
      description: 'Longest a gateway serves a media or master playlist reply it kept, in ms; 0: none kept (every request '
        + 'reads Redis). A kept reply is dropped as soon as its stream changes (a segment listed, the stream started, '
        + 'ended or its renditions set: published on `<prefix>:hls:changed` by whichever process wrote it), and all of '
        + 'them while the gateway\'s subscription is down; this bound only matters when a change message is lost '
        + '(a writer that died between its write and its message): the playlist is then at most this much late. '
        + 'Default 2000: one segment target. See docs/architecture.md, Playlist cache.',
    }),
  }, { additionalProperties: false, default: {} }),
  cluster: Type.Object({
    heartbeatIntervalMs: Type.Integer({
      minimum: 100, maximum: 60_000, default: 2000,
      description: 'How often each gateway and transcoder publishes its record (address, version, streams or slots, '
        + 'work in flight, load) to the cluster membership in Redis, in ms; a record lives 3 intervals, so a member that '
        + 'died leaves `GET /api/cluster` within 3 intervals of its last heartbeat. Default 2000.',
    }),
  }, { additionalProperties: false, default: {} }),
  outputs: Type.Object({
    maxPerStream: Type.Integer({
      minimum: 0, maximum: 64, default: 4,
      description: 'Most restream outputs one stream may have (configured, from its stream key or the auth webhook, and '
        + 'added through the control API); one more through the API answers 409 TOO_MANY_OUTPUTS. Each output is one '
        + 'ffmpeg copying the stream (no re-encode). Default 4; 0 disables outputs.',
    }),
    backoffInitialMs: Type.Integer({
      minimum: 50, maximum: 60_000, default: 1000,
      description: 'Wait before an output\'s first reconnect after its target failed, in ms; each further failure doubles it '
        + '(with up to 50 % random jitter) up to `backoffMaxMs`; a connection that stayed live for 30 s resets it. Default 1000.',
    }),
    backoffMaxMs: Type.Integer({
      minimum: 100, maximum: 600_000, default: 30_000,
      description: 'Longest wait between an output\'s reconnects, in ms. Default 30000.',
    }),
    defaults: Type.Array(Type.Object({
      url: Type.String({ minLength: 1, description: 'Target: `rtmp://`, `rtmps://` or `srt://` URL (a secret: shown redacted).' }),
      rendition: Type.Optional(Type.String({ description: '`source` (default) or a profile name of the stream\'s ladder.' })),
    }, { additionalProperties: false }), {
      default: [],
      description: 'Restream outputs started with every stream (each stream key\'s `outputs` and the auth webhook\'s '
        + '`outputs` come after these). Default none.',
    }),
  }, { additionalProperties: false, default: {} }),
  recording: Type.Object({
    enabled: Type.Boolean({
      default: false,
      description: 'Record every stream: keep all its segments and, once it ends, write VOD playlists served at '
        + '`/recordings/<manifestID>/<session>/index.m3u8` (MP4 per rendition beside them). A stream key\'s `record` '
        + 'or the auth webhook\'s `"record"` overrides it per stream. Default false.',
    }),
    deleteAfterS: Type.Integer({
      minimum: 0, default: 0,
      description: 'Delete a recording this many seconds after its stream ended, in s; 0 = keep it until deleted through the control API. Default 0.',
    }),
  }, { additionalProperties: false, default: {} }),
  thumbnails: Type.Object({
    enabled: Type.Boolean({
      default: true,
      description: 'Serve `GET /stream/<manifestID>/thumbnail.jpg` (the latest source segment\'s first keyframe) and, for '
        + 'recordings, `thumbnails.vtt` with one image per segment. Made on the first request for a segment (one ffmpeg '
        + 'decoding one keyframe), then kept in the object store beside the segment: an unwatched stream costs nothing. '
        + 'false: these paths answer 404. Default true.',
    }),
    widthPx: Type.Integer({
      minimum: 16, maximum: 3840, default: 320,
      description: 'Largest thumbnail width in pixels; a narrower source keeps its width, the height follows the '
        + 'picture\'s aspect ratio (even). Default 320.',
    }),
    jpegQscale: Type.Integer({
      minimum: 2, maximum: 31, default: 5,
      description: 'JPEG quality as ffmpeg\'s mjpeg `-q:v`: 2 is best and largest, 31 worst. Default 5 '
        + '(about 10 KB at 320x180).',
    }),
  }, { additionalProperties: false, default: {} }),
  retention: Type.Object({
    marginSegments: Type.Integer({
      minimum: 1, maximum: 1000, default: 6,
      description: 'Segments of a stream that is not recorded kept past its live window (`hls.windowSegments`) before '
        + 'they are deleted, so a player that loaded the playlist just before can still fetch them. Default 6.',
    }),
    endedKeepS: Type.Integer({
      minimum: 0, default: 600,
      description: 'How long the last segments of an ended stream that is not recorded stay (its ended playlist '
        + 'still lists them), in s; then every object of the session is deleted. Default 600.',
    }),
    sweepIntervalMs: Type.Integer({
      minimum: 100, maximum: 600_000, default: 5000,
      description: 'How often the retention sweep runs (one gateway at a time, through a Redis lock): deletes '
        + 'segments past the live window, finishes recordings, deletes expired recordings and AI results, in ms. Default 5000.',
    }),
  }, { additionalProperties: false, default: {} }),
  watermark: Type.Object({
    image: Type.String({
      default: '',
      description: 'PNG (alpha kept) or JPEG file on the gateway drawn on every transcoded rendition of streams that set no '
        + 'watermark of their own; copied into the object store at startup (`watermarks/<sha256>.png`) so transcoders on '
        + 'other hosts read it. Set at most one of `image`, `imageKey`, `text`; none = no watermark. Default none.',
    }),
    imageKey: Type.String({ default: '', description: 'Object-store key of a PNG or JPEG watermark image (instead of `image`).' }),
    text: Type.String({
      default: '',
      description: 'A text watermark (instead of an image): at most 128 letters, digits, spaces and `. , _ - + # @ ! ? ( ) & /`; '
        + 'drawn white with a black border in the `Sans` font (fontconfig; DejaVu Sans on Debian).',
    }),
    position: StringEnum(WATERMARK_POSITIONS, { default: WATERMARK_DEFAULTS.position, description: 'Where the watermark sits.' }),
    marginFraction: Type.Number({
      minimum: 0, maximum: 0.5, default: WATERMARK_DEFAULTS.marginFraction,
      description: 'Distance to the nearest frame edges as a fraction of each rendition\'s width (0.02 = 13 px at 640 wide). '
        + 'Stream keys and the webhook may give `marginPx` instead (pixels at the source size, scaled with each rendition).',
    }),
    widthFraction: Type.Number({
      minimum: 0.001, maximum: 1, default: WATERMARK_DEFAULTS.widthFraction,
      description: 'Width of the image as a fraction of each rendition\'s width (height by the image\'s aspect ratio).',
    }),
    fontSizeFraction: Type.Number({ minimum: 0.001, maximum: 0.5, default: WATERMARK_DEFAULTS.fontSizeFraction, description: 'Text height as a fraction of each rendition\'s height (text watermarks).' }),
    opacity: Type.Number({ minimum: 0, maximum: 1, default: WATERMARK_DEFAULTS.opacity, description: 'Opacity, 0 (invisible) to 1; multiplies the image\'s own alpha.' }),
    applyToSource: Type.Boolean({
      default: false,
      description: 'Also mark the source: each watermarked stream gets a marked copy of its source at the source\'s size '
        + '(rendition `source-marked`, a re-encode with 0.8 of the source\'s bitrate for its video: about 0.125 CPU s per media second for '
        + 'the 640x360 test clip, docs/operations.md "Watermarks"), and the unmarked `source` is left out of the master '
        + 'playlist and its playlist and segments answer 404. Restream outputs of `source`, thumbnails and recordings '
        + 'still read the unmarked source. Stream keys and the webhook may set it in their `watermark`. Default false.',
    }),
  }, { additionalProperties: false, default: {} }),
  streamKeys: Type.Array(StreamKeySchema, {
    default: [], description: 'Configured stream keys; empty = any well-formed name is accepted (loopback only).',
  }),
  auth: Type.Object({
    mode: StringEnum(['static', 'webhook'], {
      default: 'static',
      description: '`static`: stream keys from `streamKeys` (none = anonymous, loopback only). '
        + '`webhook`: Livepeer\'s auth webhook, `POST authWebhookUrl {"url": ...}` per new stream.',
    }),
    webhookUrl: Type.String({ pattern: HTTP_URL_OR_EMPTY, default: '', description: 'Auth webhook URL (mode `webhook`).' }),
    webhookTimeoutMs: Type.Integer({
      minimum: 100, maximum: 60_000, default: 5000, description: 'A webhook that has not answered after this many ms rejects the publish.',
    }),
  }, { additionalProperties: false, default: {} }),
  ingest: Type.Object({
    reconnectGraceMs: Type.Integer({
      minimum: 0, maximum: 600_000, default: 30_000,
      description: 'How long a live RTMP stream whose gateway stopped renewing it (the gateway died) stays live for '
        + 'its publisher to reconnect, to any gateway, and continue the same playlists (same session, sequence numbers '
        + 'going on, EXT-X-DISCONTINUITY at the join), counted from when its ownership lease and heartbeat '
        + '(`hls.heartbeatTtlMs`) expired, in ms; after it the stream is ended (EXT-X-ENDLIST) and a publish starts a '
        + 'new one. Default 30000: node-media-server\'s own reconnect grace, and long enough for an encoder retrying '
        + 'with backoff (OBS waits 2 s and more between tries) after the lease expired; 0 = end at expiry.',
    }),
  }, { additionalProperties: false, default: {} }),
  push: Type.Object({
    idleTimeoutMs: Type.Integer({
      minimum: 1000, default: 60_000, description: 'A push session with no segment for this long is closed and its playlists end (Livepeer: 60 s), in ms.',
    }),
    replyTimeoutMs: Type.Integer({ minimum: 1000, default: 60_000, description: 'How long a push request waits for its renditions before answering 503, in ms.' }),
  }, { additionalProperties: false, default: {} }),
  webrtc: Type.Object({
    whipEnabled: Type.Boolean({
      default: true,
      description: 'Accept WHIP publishes (`POST /whip/<streamKey>`, RFC 9725): a browser or OBS sends WebRTC, which '
        + 'enters ingest as an RTMP publish to this gateway\'s own RTMP port (needs `rtmp.enabled`). Default true.',
    }),
    bindAddress: Type.String({
      default: '127.0.0.1',
      description: 'Local address of the WebRTC ICE agent (its host candidates). Default 127.0.0.1: publishers on this '
        + 'machine only (and only their loopback candidates are tried). Set the host\'s reachable address, or \'\' for '
        + 'every interface, to take WHIP from other machines.',
    }),
    iceServers: Type.Array(Type.String({ pattern: '^(stun|stuns|turn|turns):' }), {
      default: [],
      description: 'STUN/TURN servers for WebRTC, as URLs: `stun:host:port`, `turn:user:password@host:port` '
        + '(`?transport=tcp` for TURN over TCP). Credentials here are secrets (never logged). Default [] (host '
        + 'candidates only).',
    }),
    portRangeBegin: Type.Integer({
      minimum: 0, maximum: 65535, default: 0,
      description: 'First UDP port of the WebRTC ICE agent (with `portRangeEnd`; open this range in a firewall). '
        + 'Default 0: any port.',
    }),
    portRangeEnd: Type.Integer({ minimum: 0, maximum: 65535, default: 0, description: 'Last UDP port of the WebRTC ICE agent; default 0: any port.' }),
    iceTimeoutMs: Type.Integer({
      minimum: 1000, maximum: 600_000, default: 15_000,
      description: 'A WHIP session whose ICE does not connect within this time after its answer (or stays '
        + 'disconnected this long) is closed, with its ffmpeg and sockets, in ms. Default 15000.',
    }),
    whipMaxSessions: Type.Integer({
      minimum: 1, maximum: 10_000, default: 20,
      description: 'WHIP sessions of this gateway at most; one more publish is answered 503 TOO_MANY_PUBLISHERS with '
        + 'Retry-After. Each takes an ffmpeg (Opus to AAC, and VP8/VP9 to H.264 when sent): ~0.07 of a core per H.264 '
        + 'publisher measured (bench/README.md), so 20 fit about 1.5 cores. Default 20.',
    }),
    whepEnabled: Type.Boolean({
      default: true,
      description: 'Serve WHEP playback (`POST /whep/<manifestID>`): a stream published here over RTMP or WHIP, its '
        + 'source rendition over WebRTC at sub-second latency (H.264 copied, or re-encoded without B-frames when the '
        + 'source has them; AAC to Opus; one ffmpeg per watched stream). Default true.',
    }),
    whepMaxViewersPerStream: Type.Integer({
      minimum: 1, maximum: 10_000, default: 50,
      description: 'WHEP viewers of one stream at most; one more is answered 503 TOO_MANY_VIEWERS with Retry-After. '
        + 'Default 50 (bench/README.md: viewers of one stream before frames drop).',
    }),
    whepMaxViewers: Type.Integer({
      minimum: 1, maximum: 100_000, default: 200,
      description: 'WHEP viewers of this gateway at most (all streams); one more is answered 503 TOO_MANY_VIEWERS with Retry-After. Default 200.',
    }),
  }, { additionalProperties: false, default: {} }),
  events: Type.Object({
    webhookUrls: Type.Array(Type.String({ pattern: HTTP_URL }), {
      default: [], description: 'URLs notified of stream.started, stream.ended, segment.transcoded, segment.failed, recording.ready, output.started, output.failed, output.ended, live.started, live.swapped, live.ended.',
    }),
    secret: Type.String({ default: '', description: 'HMAC-SHA256 key for the `Mediagate-Signature` header; empty = unsigned.' }),
    attempts: Type.Integer({ minimum: 1, maximum: 30, default: 8, description: 'Delivery tries per event and receiver before it is dropped.' }),
    backoffMs: Type.Integer({ minimum: 0, default: 1000, description: 'First retry delay in ms, doubled each retry.' }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000, description: 'Per-delivery HTTP timeout in ms.' }),
  }, { additionalProperties: false, default: {} }),
  ai: Type.Object({
    workers: Type.Array(AiWorkerSchema, { default: [], description: 'Workers registered at startup (more can be added with POST /api/workers).' }),
    apiKeys: Type.Array(Type.String({ minLength: 16 }), {
      default: [], description: 'Bearer API keys accepted on the AI endpoints; none = anonymous, on loopback only.',
    }),
    healthIntervalMs: Type.Integer({ minimum: 200, default: 5000, description: 'How often each worker\'s GET /health is polled, in ms.' }),
    maxImageBytes: Type.Integer({ minimum: 1024, default: 20 * 1024 * 1024, description: 'Largest uploaded image, in bytes.' }),
    maxAudioBytes: Type.Integer({ minimum: 1024, default: 50 * 1024 * 1024, description: 'Largest uploaded audio file, in bytes.' }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Tries per request across workers.' }),
    totalBudgetMs: Type.Integer({ minimum: 1000, default: 120_000, description: 'Total time one request may spend across all attempts, in ms.' }),
    queueWaitMs: Type.Integer({ minimum: 0, default: 2000, description: 'How long a request waits for a free worker slot before 503, in ms.' }),
    suspendBaseMs: Type.Integer({
      minimum: 1, default: 5000, description: 'First suspension of a failing worker, in ms (doubles per consecutive failure, capped at 5 min).',
    }),
    attemptTimeoutMs: Type.Integer({
      minimum: 0, default: 0, description: 'Per-attempt timeout for every pipeline, in ms; 0 = the per-pipeline defaults of retry-policy.ts.',
    }),
    serverTiming: Type.Boolean({
      default: false,
      description: 'Adds a `Server-Timing` header to each AI pipeline response: ms spent in each stage of the request (auth, body, validate, slot, hold, '
        + 'call, media, store, settle, total) from its arrival at the AI router; for profiling (bench/ai-overhead.ts). Default false.',
    }),
    resultTtlS: Type.Integer({
      minimum: 0, default: 86_400,
      description: 'Delete re-hosted AI results (`/stream/<requestID>/<file>`) this many seconds after they were stored, in s; 0 = keep. Default 86400 (24 h).',
    }),
    modelLoadWaitMs: Type.Integer({
      minimum: 0, default: 60_000,
      description: 'How long a request waits, from its arrival, for a worker still loading its model (its /health says LOADING) when no other worker '
        + 'can take it, instead of an immediate 503, in ms (within `ai.totalBudgetMs`); 0 = do not wait. Default 60000.',
    }),
    registrationTtlMs: Type.Integer({
      minimum: 1000, default: 60_000,
      description: 'A worker registration (in the cluster\'s pool in Redis) that is neither renewed (POST /api/workers again: the reference worker '
        + 'does every 10 s) nor answered a health poll for this long leaves the pool, in ms. Default 60000.',
    }),
    slotLeaseTtlMs: Type.Integer({
      minimum: 3000, default: 30_000,
      description: 'Each request running on a worker holds a slot lease in Redis, renewed every third of this while it runs: a gateway that dies '
        + 'holding slots gives them back within this long, in ms. Default 30000.',
    }),
    live: Type.Object({
      startTimeoutMs: Type.Integer({
        minimum: 100, default: 5000, description: 'Limit of one worker start of a live video-to-video session (POST <worker>/live-video-to-video), in ms. Default 5000 (Livepeer).',
      }),
      eventTimeoutMs: Type.Integer({
        minimum: 100, default: 30_000, description: 'A live worker that sends no event for this long is left and the session swaps to another, in ms. Default 30000 (Livepeer).',
      }),
      outputTimeoutMs: Type.Integer({
        minimum: 100, default: 30_000,
        description: 'A live worker that sends no output segment for this long while input arrived within half of it is suspended and left (the session swaps), in ms. Default 30000 (Livepeer).',
      }),
      maxInflightSegments: Type.Integer({
        minimum: 1, maximum: 64, default: 3, description: 'Input segments being sent to a live worker at once; one more and the worker counts as slow and is left. Default 3 (Livepeer).',
      }),
      swapWindowMs: Type.Integer({
        minimum: 0, default: 180_000, description: 'Swaps of a live session within this long of the previous swap (or its start) count together, in ms. Default 180000 (Livepeer: 3 min).',
      }),
      maxSwaps: Type.Integer({
        minimum: 0, maximum: 100, default: 2, description: 'Swaps a live session may make within `swapWindowMs`; one more stops it ("Too many swaps"). Default 2 (Livepeer).',
      }),
      keepaliveIntervalMs: Type.Integer({
        minimum: 100, default: 10_000, description: 'How often `{"keep":"alive"}` is written on a live worker\'s control channel, in ms. Default 10000 (Livepeer).',
      }),
      chargeIntervalMs: Type.Integer({
        minimum: 100, default: 5000, description: 'A live session is charged for each interval of this much wall time, in ms. Default 5000 (Livepeer).',
      }),
      streamWaitMs: Type.Integer({
        minimum: 0, default: 10_000, description: 'How long a start waits for its input stream to be live on this gateway before 404, in ms. Default 10000.',
      }),
      statusKeepMs: Type.Integer({
        minimum: 0, default: 60_000, description: 'An ended live session\'s status stays readable this long, in ms. Default 60000 (Livepeer).',
      }),
    }, { additionalProperties: false, default: {}, description: 'Live video-to-video sessions (POST /live/video-to-video/<stream>/start).' }),
  }, { additionalProperties: false, default: {} }),
  metrics: Type.Object({
    manifestIdLabels: Type.Boolean({
      default: false, description: 'Label per-stream metrics with the manifest ID (cardinality grows with streams); default off.',
    }),
  }, { additionalProperties: false, default: {} }),
  payments: Type.Object({
    enabled: Type.Boolean({ default: true, description: 'Meter and charge work against accounts.' }),
    localAccountCredits: Type.Integer({
      minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 1_000_000_000_000,
      description: 'Credits of the `local` account created at startup when the gateway binds loopback and '
        + 'no accounts exist, so `make run` works without setup; 0 = do not create it.',
    }),
    transcodePrice: Type.Object({
      pricePerUnit: Type.Integer({ minimum: 0, default: 1, description: 'Transcoding price: credits charged per `pixelsPerUnit` output pixels (units: width × height × frames).' }),
      pixelsPerUnit: Type.Integer({ minimum: 1, default: 1_000_000, description: 'Transcoding price: output pixels (width × height × frames) per `pricePerUnit` credits.' }),
    }, {
      additionalProperties: false, default: {},
      description: 'Transcoding price per output pixel (units: width × height × frames).',
    }),
    aiPrices: Type.Array(AiPriceSchema, {
      default: [{ pipeline: '*', model_id: '*', pricePerUnit: 1, pixelsPerUnit: 1_000_000 }],
      description: 'AI prices per (pipeline, model_id); model_id `*` matches any model. '
        + 'The units each pipeline is charged in are listed in src/domain/billing-units.ts.',
    }),
    onInsufficientBalance: StringEnum(['end', 'source-only'], {
      default: 'end', description: 'Mid-stream, when a segment cannot be paid: `end` the stream, or continue with `source-only`.',
    }),
    liveUnitsPerSecond: Type.Integer({
      minimum: 0, maximum: 1_000_000_000_000, default: 1280 * 720 * 30,
      description: 'Units a live video-to-video session is charged per second of wall time, priced by the `aiPrices` rule of '
        + '(`live-video-to-video`, model); default 27648000 (1280 × 720 × 30, Livepeer\'s).',
    }),
    liveHoldSec: Type.Integer({
      minimum: 1, maximum: 3600, default: 60,
      description: 'Seconds of a live video-to-video session held when it starts and kept held while it runs (refilled after '
        + 'each 5 s charge as far as the balance goes); a start the account cannot cover is refused with 402. Default 60 (Livepeer\'s).',
    }),
  }, { additionalProperties: false, default: {} }),
  allowAnonymous: Type.Boolean({ default: false, description: 'Permit anonymous publishing on a non-loopback bind address.' }),
  log: Type.Object({
    level: StringEnum(LOG_LEVELS, { default: 'info', description: 'Log level (pino).' }),
    format: StringEnum(LOG_FORMATS, {
      default: 'auto', description: '`json` (one object per line), `pretty` (human-readable), or `auto`: pretty on a terminal, JSON otherwise.',
    }),
  }, { additionalProperties: false, default: {} }),
  shutdownTimeoutMs: Type.Integer({
    minimum: 0, default: 10_000,
    description: 'How long a shutdown (SIGTERM/SIGINT) waits for in-flight work, in ms; default 10000: HTTP '
      + 'requests in flight, and with the embedded transcoder the transcodes of the streams\' last '
      + 'segments. What is not done by then stays queued for other transcoders; the process is '
      + 'forced out 5 s later.',
  }),
}, { additionalProperties: false });

/** The gateway and transcoder configuration (the type of {@link CONFIG_SCHEMA}). */
export type MediagateConfig = Static<typeof CONFIG_SCHEMA>;
/** One configured stream key (`streamKeys[]`). */
export type StreamKeyConfig = Static<typeof StreamKeySchema>;
/** One AI worker registered at startup (`ai.workers[]`). */
export type AiWorkerConfig = Static<typeof AiWorkerSchema>;
