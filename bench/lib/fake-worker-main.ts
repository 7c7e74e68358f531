/**
 * The fast fake ai-runner worker (test/helpers/fake-ai-worker.ts) in a process of its own,
 * for benchmarks: prints `{"url": "..."}` on stdout once listening, exits on SIGTERM/SIGINT.
 */
import { startFakeAiWorker } from '../../test/helpers/fake-ai-worker.ts';

const worker = await startFakeAiWorker();
process.stdout.write(`${JSON.stringify({ url: worker.url })}\n`);
// The benchmark sends thousands of requests: keep no per-call history.
setInterval(() => worker.resetStats(), 1000).unref();
const stop = (): void => { void worker.close().then(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
