/**
 * Ingest's media ports implemented on the media layer: the source probe of pushed segments
 * (ffprobe) and the RTMP segmenter factory (in process, on the RTMP server's packet taps).
 */
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { probeSegment } from '../media/probe.ts';
import type { SourceProbe } from './ingest-ports.ts';
import type { FlvTagSource } from './rtmp/packet-tap.ts';
import { RtmpSegmenter } from './rtmp-segmenter.ts';
import type { RtmpConnectionId, StreamSessionId } from './stream-registry.ts';

/** {@link SourceProbe} on ffprobe (media/probe.ts, its children under `supervisor`). */
export function mediaSourceProbe(supervisor: ChildSupervisor): SourceProbe {
  return {
    probe: (path, container) => probeSegment(path, { demuxer: container === 'mp4' ? 'mov' : 'mpegts', supervisor }),
  };
}

/**
 * `startSegmenter` for LiveIngest: an {@link RtmpSegmenter} per RTMP publish, not yet started
 * (its owner attaches its listeners, then calls `start()`), reading
 * the publish's FLV tags from the RTMP server in process and cutting into
 * `<workDir>/<dirPrefix><session>/`.
 * @param options.tags the RTMP server's tag source of a publish (`RtmpServer.flvTags`); `undefined` once it is gone
 * @throws GatewayError INTERNAL when the publish is gone before its segmenter starts
 */
export function rtmpSegmenters(options: {
  tags: (publishId: RtmpConnectionId) => FlvTagSource | undefined;
  workDir: string;
  dirPrefix: string;
  segmentTargetMs: number;
  logger: Logger;
}): (publishId: RtmpConnectionId, session: StreamSessionId) => RtmpSegmenter {
  return (publishId, session) => {
    const tags = options.tags(publishId);
    if (tags === undefined) throw new GatewayError('INTERNAL', 'the RTMP publish to segment is gone');
    const segmenter = new RtmpSegmenter({
      tags,
      workDir: join(options.workDir, `${options.dirPrefix}${session}`),
      segmentTargetMs: options.segmentTargetMs,
      logger: options.logger.child({ session }),
    });
    return segmenter;
  };
}
