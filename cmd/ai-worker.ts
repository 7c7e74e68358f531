/**
 * mediagate reference AI worker: ESRGAN super-resolution (x2/x3/x4, TensorFlow.js on
 * WebAssembly) behind the Livepeer ai-runner API on port 8000; registers itself with a
 * gateway when given its URL. See src/ai-worker/ and `--help`.
 */
import { main } from '../src/ai-worker/cli.ts';

await main();
