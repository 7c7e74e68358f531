/**
 * The ingest families: source segments emerged, HTTP push requests by status, and live
 * streams by protocol. Ingest records the first two itself (its `IngestRecorder` port in
 * ingest/ingest-ports.ts, which `IngestMetrics` fits: LiveIngest once a segment is handed
 * to the queue, the push route once its answer is over); the live-stream gauge reads
 * the gateway's ingest at each scrape through the source it is built with.
 */
import { Counter, Gauge } from 'prom-client';
import { INGEST_PROTOCOLS, enumLabel, statusCodeLabel } from './metric-labels.ts';
import { metricName, type MetricsRegistry, type PullSource } from './metrics-registry.ts';

/** A live stream as the ingest lists it (`LiveIngest.list()` fits). */
export interface LiveStreamSourceEntry {
  readonly protocol: string;
}

/** `mediagate_segments_emerged_total`, `mediagate_push_requests_total` and `mediagate_live_feed_unread_trimmed_segments_total`. Recording never throws. */
export class IngestMetrics {
  readonly #metrics: MetricsRegistry;
  readonly #segmentsEmerged: Counter<string>;
  readonly #pushRequests: Counter<string>;
  readonly #feedUnreadTrimmed: Counter<string>;

  constructor(metrics: MetricsRegistry) {
    this.#metrics = metrics;
    const registers = [metrics.registry];
    this.#segmentsEmerged = new Counter({
      name: metricName('segments_emerged_total'), registers, labelNames: metrics.manifestIdLabels ? ['manifest_id'] : [],
      help: 'Source segments produced by ingest (RTMP segmenter or HTTP push) and listed (Livepeer segment_source_emerged).',
    });
    this.#pushRequests = new Counter({
      name: metricName('push_requests_total'), registers, labelNames: ['status_code'],
      help: 'HTTP push ingest requests (POST|PUT /live/<name>/<seq>.ts|.mp4) by answered status code; `aborted` when the client left first.',
    });
    this.#feedUnreadTrimmed = new Counter({
      name: metricName('live_feed_unread_trimmed_segments_total'), registers, labelNames: [],
      help: 'Source segments a live session\'s feed dropped before its transcoder recorded them (over its 64 MiB cap); each fails.',
    });
  }

  /** `segments` source segments of a live feed were dropped before its transcoder recorded them (the feed's byte cap). */
  recordLiveFeedUnreadTrimmed(segments: number): void {
    this.#feedUnreadTrimmed.inc(segments);
  }

  /**
   * A source segment was stored, listed and handed to the transcode queue (Livepeer
   * segment_source_emerged): once per segment, by LiveIngest.
   */
  recordSegmentEmerged(manifestID: string): void {
    this.#segmentsEmerged.inc(this.#metrics.streamLabels(manifestID, this.#segmentsEmerged));
  }

  /** One HTTP push request answered (its status) or left by its client (`aborted`); by the push route. */
  recordPushRequest(statusCode: number | 'aborted'): void {
    this.#pushRequests.inc({ status_code: statusCodeLabel(statusCode) });
  }
}

/**
 * `mediagate_live_streams{protocol}`: the live streams this gateway holds, read from
 * `source` (e.g. `() => ingest.list()`) once per scrape. Without a source the family has
 * no series.
 */
export function registerLiveStreamsGauge(metrics: MetricsRegistry, source?: PullSource<LiveStreamSourceEntry>): void {
  const streams = metrics.pullSource('live_streams', source);
  new Gauge({
    name: metricName('live_streams'), registers: [metrics.registry], labelNames: ['protocol'],
    help: 'Live streams held by this gateway, by ingest protocol (rtmp|push) (Livepeer current_sessions_total).',
    async collect() {
      this.reset();
      if (!streams.isSet) return;
      const entries = await streams.pull();
      if (!entries) return;
      const counts = new Map<string, number>(INGEST_PROTOCOLS.map((p) => [p, 0]));
      for (const s of entries) {
        const protocol = enumLabel(INGEST_PROTOCOLS, s.protocol);
        counts.set(protocol, (counts.get(protocol) ?? 0) + 1);
      }
      for (const [protocol, count] of counts) this.set({ protocol }, count);
    },
  });
}
