/** RTMP → HLS end to end (rtmp-to-hls-suite.ts) on the filesystem object store. */
import { rtmpToHlsSuite } from './rtmp-to-hls-suite.ts';

rtmpToHlsSuite('fs');
