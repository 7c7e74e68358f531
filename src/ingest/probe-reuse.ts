/**
 * When an in-process measurement of an RTMP segment (media/ts-measure.ts: frame count,
 * first SPS, PMT stream types) may stand in for an ffprobe of it. Pure: the caller runs the
 * probe and the measurement.
 *
 * ffprobe runs for the first segment of a stream and whenever the measurement disagrees with
 * the last probed segment (the reference): another SPS (codec string, i.e. profile and level,
 * or picture size), other elementary streams, or a frame count that does not fit the probed
 * frame rate over the cut duration. Otherwise the reference's stream facts are reused with
 * this segment's measured frame count, which is what ffprobe would count
 * (test/integration/media/ts-measure.test.ts).
 */
import type { MeasuredSegment, ProbedSegment } from './ingest-ports.ts';

/** The last segment ffprobe measured and the in-process measurement of the same file, which agreed. */
export interface ProbeReference {
  readonly probed: ProbedSegment;
  readonly measured: MeasuredSegment;
}

/**
 * How far a measured frame count may be from the probed rate × cut duration and still count
 * as the same rate: 2 frames (a cut lands on either side of a frame) or 10 %, whichever is larger.
 */
export const FRAME_COUNT_SLACK = { frames: 2, fraction: 0.1 } as const;

/**
 * Whether an in-process measurement is worth taking before ffprobe: there is a reference with
 * video and the segment has a positive cut duration (ms) to check the frame count against.
 */
export function mayReuseProbe(reference: ProbeReference | undefined, cutMs: number | undefined): reference is ProbeReference & { probed: { video: NonNullable<ProbedSegment['video']> } } {
  return reference?.probed.video !== undefined && cutMs !== undefined && cutMs > 0;
}

/**
 * The probe result of a segment from its in-process measurement, or `undefined` when ffprobe
 * must run: no usable reference or cut (see {@link mayReuseProbe}), no measurement (it could
 * not read the file), another codec string, picture size or stream layout, or a frame count
 * off the reference's rate over `cutMs` by more than {@link FRAME_COUNT_SLACK}.
 * @param cutMs the segment's duration from the segmenter's cut points, ms
 */
export function reuseProbe(reference: ProbeReference | undefined, measured: MeasuredSegment | undefined, cutMs: number | undefined): ProbedSegment | undefined {
  if (!measured || !mayReuseProbe(reference, cutMs)) return undefined;
  const video = reference.probed.video;
  const last = reference.measured;
  if (measured.videoCodecs !== last.videoCodecs || measured.width !== last.width || measured.height !== last.height) return undefined;
  if (measured.streamTypes.join() !== last.streamTypes.join()) return undefined;
  const expectedFrames = (cutMs! / 1000) * (video.fpsNum / video.fpsDen);
  if (Math.abs(measured.frames - expectedFrames) > Math.max(FRAME_COUNT_SLACK.frames, expectedFrames * FRAME_COUNT_SLACK.fraction)) return undefined;
  return { ...reference.probed, video: { ...video, frames: measured.frames } };
}

/**
 * The reference a fresh ffprobe result makes for later segments: only when the in-process
 * measurement of the same file agrees with it (same picture size and frame count), so a
 * measurement that misreads this stream never stands in for ffprobe.
 * @returns the reference, or `undefined` (keep probing every segment)
 */
export function probeReference(probed: ProbedSegment, measured: MeasuredSegment | undefined): ProbeReference | undefined {
  const video = probed.video;
  if (!measured || !video) return undefined;
  if (measured.width !== video.width || measured.height !== video.height || measured.frames !== video.frames) return undefined;
  return { probed, measured };
}
