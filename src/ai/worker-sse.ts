/**
 * The LLM's streamed answer (`stream:true`, `text/event-stream`, see worker-client.ts): the
 * `data:` payloads of the worker's SSE body as they arrive ({@link sseChunks}), parsed by
 * {@link SseDataParser}; an error event or a stream without `[DONE]` is a
 * {@link WorkerCallError}.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';
import type { Exchange, ReplyBody } from './worker-exchange.ts';
import { streamError, WorkerCallError } from './worker-reply.ts';

/**
 * The `data:` payloads of an SSE body, yielded as each event completes. The stall timer
 * runs only while waiting for the worker, not while the consumer handles a chunk.
 */
export async function* sseChunks(body: ReplyBody, exchange: Exchange, stallMs: number, path: string): AsyncGenerator<string> {
  const chunks = body[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  const parser = new SseDataParser();
  try {
    let ended = false;
    while (!ended) {
      exchange.arm(stallMs);
      const result = await exchange.run(stallMs, path, () => chunks.next()).finally(() => exchange.disarm());
      const payloads = result.done ? [...parser.push(decoder.decode()), ...parser.end()] : parser.push(decoder.decode(result.value, { stream: true }));
      ended = result.done === true;
      for (const data of payloads) {
        const error = streamError(data);
        if (error !== undefined) {
          throw new WorkerCallError('server', `worker stream on ${path} failed: ${error}`, { status: 200, workerMessage: error });
        }
        yield data;
        if (data === '[DONE]') return;
      }
    }
    throw new WorkerCallError('server', `worker stream on ${path} ended without [DONE]`, { status: 200 });
  } finally {
    exchange.dispose();
  }
}

/**
 * The `data` payloads of a Server-Sent Events stream (WHATWG HTML §9.2.6), parsed by
 * `eventsource-parser`: lines end in CRLF, LF or CR; `data:` lines of one event are joined
 * with LF; comments and other fields are ignored; a blank line dispatches the event.
 * Exported for tests.
 */
export class SseDataParser {
  readonly #parser: EventSourceParser;
  #completed: string[] = [];

  constructor() {
    this.#parser = createParser({ onEvent: (event) => { this.#completed.push(event.data); } });
  }

  /** Feeds decoded text; returns the payloads of the events it completed. */
  push(text: string): string[] {
    this.#parser.feed(text);
    return this.#take();
  }

  /** End of input: a last event not followed by a blank line is still delivered (lenient). */
  end(): string[] {
    this.#parser.feed('\n\n');
    this.#parser.reset();
    return this.#take();
  }

  #take(): string[] {
    const out = this.#completed;
    this.#completed = [];
    return out;
  }
}
