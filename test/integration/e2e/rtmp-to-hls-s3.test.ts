/**
 * RTMP → HLS end to end (rtmp-to-hls-suite.ts) on the S3 object store: s3rver in a child
 * process, or the endpoint MEDIAGATE_TEST_S3_ENDPOINT names (test/helpers/s3rver.ts).
 */
import { rtmpToHlsSuite } from './rtmp-to-hls-suite.ts';

rtmpToHlsSuite('s3');
