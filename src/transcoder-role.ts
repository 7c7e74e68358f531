/**
 * The composition root's transcoder part: the transcode worker (the transcoder role, and the
 * gateway's embedded transcoder) and the transcoder role's optional metrics/health port.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MediagateConfig } from './config/config-schema.ts';
import type { Logger } from './log/logger.ts';
import { ownerTag } from './storage/work-dir.ts';
import { TranscodeWorker, transcodeLockTimingFor } from './transcode/transcode-queue.ts';
import { SegmentTranscoder } from './transcode/segment-transcoder.ts';
import { TranscodeResults } from './transcode/transcode-results.ts';
import { LiveSessionRunner, type StartLadder } from './transcode/live-session-runner.ts';
import { RedisLiveSessions } from './transcode/live-session-store.ts';
import { LiveFeedReader } from './transcode/live-feed-store.ts';
import { LiveSessionBus } from './transcode/live-session-bus.ts';
import { LiveLadder } from './transcode/live-ladder.ts';
import { displayedSize, fitRendition, type FittedRendition } from './domain/profile.ts';
import { parseWatermarkSpec } from './domain/watermark.ts';
import { fitLadderToSource } from './domain/ladder-fit.ts';
import { playableSourceProfile } from './domain/source-lint.ts';
import { isX264Preset } from './domain/x264-preset.ts';
import { FfmpegRunner } from './media/ffmpeg-runner.ts';
import { registerLiveStreamsGauge } from './metrics/ingest-metrics.ts';
import { createHttpApp, listenEarly, closeServer, boundPort } from './http/http-app.ts';
import { healthOf } from './http/health.ts';
import { Lifecycle } from './lifecycle.ts';
import type { Core } from './core.ts';
import { STORAGE_HEALTH_CHECK_MS } from './core.ts';

/**
 * The transcoder role: the worker is already running; adds the optional metrics/health HTTP port.
 * @returns the base URL of that port (the transcoder's address in the cluster view); undefined without one
 */
export async function startTranscoderRole(config: MediagateConfig, logger: Logger, core: Core, lifecycle: Lifecycle): Promise<string | undefined> {
  const { redis, metrics, stores } = core;
  // A transcoder holds no live stream: the family is listed without series, as it always was.
  registerLiveStreamsGauge(metrics.registry);
  let baseUrl: string | undefined;
  if (config.transcode.metricsPort > 0) {
    const http = await listenEarly(config.http.host, config.transcode.metricsPort, 'MEDIAGATE_TRANSCODE_METRICS_PORT (0 disables it)');
    lifecycle.add('http', async (deadlineMs) => { await http.drain(deadlineMs); await closeServer(http.server); });
    http.setHandler(createHttpApp({
      logger: logger.child({ component: 'http' }),
      routers: [metrics.http.router()],
      health: healthOf({
        redis: async () => (redis.status === 'ready' ? { ok: true } : { ok: false, detail: redis.status }),
        storage: () => stores.check(STORAGE_HEALTH_CHECK_MS),
      }),
    }));
    baseUrl = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${boundPort(http.server)}`;
  }
  logger.info({ concurrency: config.transcode.concurrency, preset: config.transcode.x264Preset, metrics: baseUrl ? `${baseUrl}/metrics` : 'disabled' }, 'transcoder ready; waiting for jobs');
  return baseUrl;
}

/** A running transcode worker's figures for the cluster view: its slots and what runs on them now. */
export interface TranscodeWorkerLoad {
  readonly slots: number;
  inFlight(): { liveSessions: number; jobs: number };
}

/**
 * The transcode worker (transcoder role, and the gateway's embedded transcoder): ffmpeg ladder
 * and result handling; with `transcode.liveSessions`, the live session runner beside it, both
 * sharing the `transcode.concurrency` slots.
 */
export async function startTranscodeWorker(config: MediagateConfig, logger: Logger, core: Core, lifecycle: Lifecycle): Promise<TranscodeWorkerLoad> {
  const { storage, connections, keys, recordingIndex, retry, storeRetry, events, metrics, billing } = core;
  const log = logger.child({ component: 'transcoder' });
  const runner = new FfmpegRunner({ logger: log });
  // Made here, not at the first job: a transcoder running only live sessions has its work dir too.
  await mkdir(join(config.workDir, 'transcode'), { recursive: true });
  const transcoder = new SegmentTranscoder({
    storage, storageRetry: storeRetry, workDir: join(config.workDir, 'transcode'), jobDirPrefix: `job-${ownerTag()}`, logger: log, x264Preset: config.transcode.x264Preset,
    timeoutMs: config.transcode.timeoutMs, runner, probe: { supervisor: core.children },
  });
  lifecycle.add('ffmpeg', () => transcoder.close());

  const results = new TranscodeResults({ index: recordingIndex, metrics: metrics.transcode, events, retry, logger: log, ...(billing ? { billing } : {}) });
  let jobsInFlight = 0;
  const worker = new TranscodeWorker({
    connection: connections.open('transcoder', 'blocking'),
    prefix: keys.prefix,
    logger: log,
    concurrency: config.transcode.concurrency,
    lockTiming: transcodeLockTimingFor(config.segmentTargetMs),
    hooks: {
      process: async (job) => {
        jobsInFlight += 1;
        try {
          return await transcoder.transcode(job);
        } finally {
          jobsInFlight -= 1;
        }
      },
      onCompleted: (job, result) => results.completed(job, result, job.discontinuity === true ? { discontinuity: true } : {}),
      onFailedForGood: (job, reason, code, cause) => results.failedForGood(job, reason, code, cause),
      onTranscoderLost: (job) => results.transcoderLost(job),
    },
  });
  lifecycle.add('transcode-worker', (deadlineMs) => worker.close({ waitMs: deadlineMs - Date.now() }));
  await worker.waitUntilReady();

  let liveRunner: LiveSessionRunner | undefined;
  if (config.transcode.liveSessions) {
    const liveLog = logger.child({ component: 'live-sessions' });
    const reader = new LiveFeedReader({ redis: connections.open('live-feed-reader', 'blocking'), commands: core.redis, keys, logger: liveLog });
    const slots = config.transcode.concurrency;
    const runner = new LiveSessionRunner({
      sessions: new RedisLiveSessions({ redis: core.redis, keys }), feed: reader, results, storage, storageRetry: storeRetry,
      startLadder: liveLadderStarter(config, core), logger: liveLog, slots, jobsInFlight: () => jobsInFlight,
      onSessionsChanged: (owned) => worker.setConcurrency(Math.max(1, slots - owned)),
      segmentTargetMs: config.segmentTargetMs,
      // The process's one member ID (core.ts) names it in session leases, as in the cluster view.
      id: core.memberId,
    });
    liveRunner = runner;
    // A session opened anywhere wakes this transcoder at once (its poll is the fallback).
    const bus = new LiveSessionBus({ subscriber: connections.open('live-session-bus', 'blocking'), keys, logger: liveLog, onOpened: () => runner.wake() });
    // Closed before the worker: its ladders stop and its sessions are released for another transcoder.
    lifecycle.add('live-sessions', async () => {
      await bus.close();
      await runner.close();
      await reader.close();
    });
    runner.start();
  }
  return { slots: config.transcode.concurrency, inFlight: () => ({ liveSessions: liveRunner?.owned ?? 0, jobs: jobsInFlight }) };
}

/**
 * Starts a session's `LiveLadder`: the profiles fitted to the source (upscales omitted; with
 * `fitToSource`, renditions not smaller than the source left out and bitrates capped with the
 * source's measured bitrate, as the gateway planned them: domain/ladder-fit.ts); none when
 * nothing fits. A watermark image is fetched from the object store (through the storage retry)
 * and kept until the ladder's ffmpeg exits.
 */
function liveLadderStarter(config: MediagateConfig, core: Core): StartLadder {
  const preset = isX264Preset(config.transcode.x264Preset) ? config.transcode.x264Preset : undefined;
  return async ({ profiles, fitToSource, source, logger, watermark }) => {
    const fitted = fitToSource ? fitLadderToSource(profiles, source.video, source.bitrateBps).profiles : profiles;
    const spec = watermark === undefined ? undefined : parseWatermarkSpec(watermark);
    if (watermark !== undefined && !spec) logger.error({ watermark: JSON.stringify(watermark).slice(0, 300) }, 'live session carries a malformed watermark; transcoding without it');
    // Watermark applyToSource: the marked copy of the source the gateway planned (ingest adds the same profile).
    const copy = spec?.applyToSource === true ? playableSourceProfile(fitted, source.video, [], source.bitrateBps ?? 0, { marked: true }) : undefined;
    const ladder = copy ? [...fitted, copy] : fitted;
    const renditions = ladder.map((p) => fitRendition(p, source.video)).filter((f): f is FittedRendition => f !== undefined);
    if (renditions.length === 0) return undefined;
    const image = spec?.kind === 'image'
      ? await core.storeRetry.run('fetch watermark image', () => core.storage.getFile(spec.imageKey), core.storeRetry.deadline()) : undefined;
    const sourceWidthPx = displayedSize(source.video).width;
    try {
      const ladder = new LiveLadder({
        renditions, source, supervisor: core.children, logger, ...(preset ? { x264Preset: preset } : {}), tuning: config.transcode.liveEncoderTuning,
        ...(spec ? { watermark: { spec, sourceWidthPx, ...(image ? { imagePath: image.path } : {}) } } : {}),
      });
      if (image) ladder.once('exit', () => { void image.release(); });
      return ladder;
    } catch (err) {
      await image?.release();
      throw err;
    }
  };
}
