/**
 * Ingest's media ports implemented on the media layer: the source probe (ffprobe, and the
 * in-process MPEG-TS measurement for RTMP segments) and the RTMP segmenter factory.
 */
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import type { ChildSupervisor } from '../media/child-supervisor.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { probeSegment } from '../media/probe.ts';
import { measureTsFile } from '../media/ts-measure.ts';
import type { SourceProbe } from './ingest-ports.ts';
import { Segmenter } from './segmenter.ts';
import type { RtmpConnectionId, StreamSessionId } from './stream-registry.ts';

/** {@link SourceProbe} on ffprobe (media/probe.ts, its children under `supervisor`) and media/ts-measure.ts. */
export function mediaSourceProbe(supervisor: ChildSupervisor): SourceProbe {
  return {
    probe: (path, container) => probeSegment(path, { demuxer: container === 'mp4' ? 'mov' : 'mpegts', supervisor }),
    measure: async (path) => {
      const m = await measureTsFile(path);
      return { frames: m.frames, videoCodecs: m.videoCodecs, width: m.width, height: m.height, streamTypes: m.streams.map((st) => st.streamType) };
    },
  };
}

/**
 * `startSegmenter` for LiveIngest: a started {@link Segmenter} per RTMP publish that pulls the
 * publish by its internal name, never the stream key (a puller's URL is visible in `ps`),
 * from the address RTMP is bound to, and cuts into `<workDir>/<dirPrefix><session>/`.
 * @param options.pullUrl the RTMP server's pull URL of a publish; `undefined` once it is gone
 * @throws GatewayError INTERNAL when the publish is gone before its segmenter starts
 */
export function rtmpSegmenters(options: {
  pullUrl: (publishId: RtmpConnectionId) => string | undefined;
  workDir: string;
  dirPrefix: string;
  segmentTargetMs: number;
  logger: Logger;
  supervisor: ChildSupervisor;
}): (publishId: RtmpConnectionId, session: StreamSessionId) => Segmenter {
  return (publishId, session) => {
    const inputUrl = options.pullUrl(publishId);
    if (inputUrl === undefined) throw new GatewayError('INTERNAL', 'the RTMP publish to segment is gone');
    const segmenter = new Segmenter({
      inputUrl,
      workDir: join(options.workDir, `${options.dirPrefix}${session}`),
      segmentTargetMs: options.segmentTargetMs,
      logger: options.logger.child({ session }),
      supervisor: options.supervisor,
    });
    segmenter.start();
    return segmenter;
  };
}
