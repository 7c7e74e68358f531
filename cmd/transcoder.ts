/** mediagate transcoder: a BullMQ worker that transcodes source segments into the ladder. */
import { main } from '../src/cli.ts';

await main('transcoder');
