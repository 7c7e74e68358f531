/** mediagate gateway: RTMP + HTTP ingest, HLS playback, and (by default) an embedded transcoder. */
import { main } from '../src/cli.ts';

await main('gateway');
