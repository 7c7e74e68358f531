/**
 * Publish authorization by Livepeer's auth webhook (docs/wire-contract.md §6; go-livepeer
 * `server/auth.go`, `authenticateStream`).
 *
 * For each new stream the gateway sends `POST <webhookUrl>` with the JSON body
 * `{"url": "<full incoming URL>"}` and `Content-Type: application/json`. The webhook answers:
 * - HTTP 200 with an empty body: accepted with the defaults, manifest ID = the stream name
 *   from the URL and the default ladder (Livepeer's behaviour; the key then is public, as it
 *   names the playback URL: a webhook that wants a secret key returns a `manifestID`);
 * - HTTP 200 with a JSON object: accepted; it must carry a non-empty `manifestID` and may set
 *   `presets` / `profiles` / `record` / `watermark` (see `transcode-config.ts`) and `outputs`,
 *   restream targets `[{"url", "rendition"}]` (domain/output-target.ts; an invalid one refuses
 *   the stream); other fields are logged and ignored;
 * - anything else: refused.
 */
import type { Logger } from '../log/logger.ts';
import { REDACTED } from '../log/redact.ts';
import type { VideoProfile } from '../domain/profile.ts';
import { GatewayError, isGatewayError } from '../errors/gateway-error.ts';
import type { PublishAttempt, PublishAuthorizer, StreamGrant } from './ingest-ports.ts';
import { parseTranscodeConfiguration, type TranscodeConfiguration } from './transcode-config.ts';
import type { WatermarkRequest, WatermarkSpec } from '../domain/watermark.ts';
import { ladderFrames } from './watermark-resolver.ts';
import { parseOutputRequests, type OutputRequest } from '../domain/output-target.ts';

/** The largest webhook reply body read, in bytes; a larger reply refuses the stream. */
export const MAX_WEBHOOK_REPLY_BYTES = 64 * 1024;
/** How much of a refusing reply's body is read for the log, in bytes. */
const REFUSAL_BODY_READ_BYTES = 1024;
/** How many characters of a reply body reach a log line. */
const LOG_EXCERPT_CHARS = 200;

export interface WebhookAuthorizerOptions {
  /**
   * The webhook, `http://` or `https://`. User info in the URL (`https://user:pass@host/auth`)
   * is sent as HTTP Basic auth. Logged as origin + path only (its query may carry a token).
   */
  webhookUrl: string;
  /** The whole exchange (connect, reply headers, reply body) must finish within this many ms (config default 5000). */
  timeoutMs: number;
  logger: Logger;
  /** The ladder of a stream whose webhook reply sets neither `presets` nor `profiles`. */
  defaultLadder: readonly VideoProfile[];
  /** HTTP client; default the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Reads and checks the image of a reply's `"watermark"` (ingest/watermark-resolver.ts
   * `WatermarkResolver`); absent: a reply that sets a watermark is refused.
   */
  watermarks?: { resolve(request: WatermarkRequest, frames: readonly { width: number; height: number }[], where: string): Promise<WatermarkSpec> };
}

/**
 * A {@link PublishAuthorizer} that asks Livepeer's auth webhook. No caching: the webhook is
 * asked once per new stream, as Livepeer does. The stream key (and the incoming URL that
 * carries it) never reaches a log line, and the webhook's reply body never reaches the publisher.
 */
export class WebhookAuthorizer implements PublishAuthorizer {
  readonly #url: URL;
  readonly #authorization: string | undefined;
  /** Origin + path, safe to log. */
  readonly #logUrl: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #defaultLadder: readonly VideoProfile[];
  readonly #fetch: typeof fetch;
  readonly #watermarks: WebhookAuthorizerOptions['watermarks'];

  /** @throws GatewayError CONFIG_INVALID when the URL is not an absolute http(s) URL or the timeout is not a positive integer. */
  constructor(options: WebhookAuthorizerOptions) {
    let url: URL;
    try {
      url = new URL(options.webhookUrl);
    } catch {
      throw new GatewayError('CONFIG_INVALID', 'auth webhook URL is not an absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GatewayError('CONFIG_INVALID', `auth webhook URL must be http:// or https://, got ${url.protocol}//`);
    }
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new GatewayError('CONFIG_INVALID', `auth webhook timeout must be a positive integer of ms, got ${options.timeoutMs}`);
    }
    if (url.username !== '' || url.password !== '') {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      this.#authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    url.hash = '';
    this.#url = url;
    this.#logUrl = `${url.origin}${url.pathname}`;
    this.#timeoutMs = options.timeoutMs;
    this.#log = options.logger.child({ component: 'auth-webhook' });
    this.#defaultLadder = options.defaultLadder;
    const injected = options.fetch;
    this.#fetch = injected ?? ((input, init) => fetch(input, init));
    this.#watermarks = options.watermarks;
  }

  /**
   * Asks the webhook about a new stream.
   * @returns the manifest ID and ladder to use
   * @throws GatewayError PUBLISH_DENIED when the webhook refuses (non-200), does not answer
   *   within `timeoutMs`, is unreachable, or replies with something unusable (not JSON, no
   *   `manifestID`, invalid `manifestID`/`presets`/`profiles`, more than 64 KiB). Timeouts,
   *   connection failures, 429 and 5xx are marked retryable. INVALID_WATERMARK (400) when the
   *   reply's `watermark` is malformed or its image is missing, not a PNG/JPEG, or larger than the frame.
   */
  async authorize(attempt: PublishAttempt): Promise<StreamGrant> {
    const { streamKey, url, protocol } = attempt;
    const startedMs = Date.now();
    const log = this.#log.child({ webhook: this.#logUrl, protocol, url: redactIncomingUrl(url, streamKey) });
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;

    let status: number;
    let body: { text: string; overLimit: boolean };
    try {
      const response = await this.#fetch(this.#url, {
        method: 'POST', headers, body: JSON.stringify({ url }), signal,
        // A redirected POST would reach the target as a body-less GET; refuse it visibly instead.
        redirect: 'manual',
      });
      status = response.status;
      // A refusal's body is only for the log: losing it must not turn the refusal into "unreachable".
      body = status === 200
        ? await readBody(response, MAX_WEBHOOK_REPLY_BYTES)
        : await readBody(response, REFUSAL_BODY_READ_BYTES).catch(() => ({ text: '', overLimit: false }));
    } catch (err) {
      if (signal.aborted) {
        log.warn({ timeoutMs: this.#timeoutMs }, 'auth webhook did not answer in time; stream refused');
        throw new GatewayError('PUBLISH_DENIED', `auth webhook did not answer within ${this.#timeoutMs} ms`, { retryable: true });
      }
      log.warn({ reason: this.#scrub(transportReason(err), streamKey) }, 'auth webhook unreachable; stream refused');
      throw new GatewayError('PUBLISH_DENIED', 'auth webhook unreachable', { retryable: true });
    }
    const durationMs = Date.now() - startedMs;

    if (status !== 200) {
      const fields = { status, durationMs, bodyExcerpt: excerpt(this.#scrub(body.text, streamKey)) };
      if (status >= 300 && status < 400) log.warn(fields, 'auth webhook answered a redirect; configure its final URL; stream refused');
      else if (status >= 500) log.warn(fields, 'auth webhook failed; stream refused');
      else log.info(fields, 'auth webhook refused the stream');
      throw new GatewayError('PUBLISH_DENIED', `auth webhook refused the stream (HTTP ${status})`, { retryable: status >= 500 || status === 429 });
    }

    if (body.overLimit) {
      log.error({ durationMs, maxBytes: MAX_WEBHOOK_REPLY_BYTES }, 'auth webhook reply too large; stream refused');
      throw new GatewayError('PUBLISH_DENIED', `auth webhook reply exceeds ${MAX_WEBHOOK_REPLY_BYTES} bytes`);
    }

    if (body.text.trim() === '') {
      log.info({ durationMs, defaults: true, ladder: this.#defaultLadder.map((p) => p.name) }, 'auth webhook accepted the stream');
      return { manifestID: streamKey, profiles: this.#defaultLadder };
    }

    let raw: unknown;
    try {
      raw = JSON.parse(body.text);
    } catch {
      log.error({ durationMs, bodyExcerpt: excerpt(this.#scrub(body.text, streamKey)) }, 'auth webhook reply is not JSON; stream refused');
      throw new GatewayError('PUBLISH_DENIED', 'auth webhook reply is not valid JSON');
    }
    const rawManifestID = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>)['manifestID'] : undefined;
    if (rawManifestID === undefined || rawManifestID === null || rawManifestID === '') {
      log.error({ durationMs, bodyExcerpt: excerpt(this.#scrub(body.text, streamKey)) }, 'auth webhook reply lacks manifestID; stream refused');
      throw new GatewayError('PUBLISH_DENIED', 'auth webhook reply lacks a manifestID (a JSON reply must carry a non-empty manifestID; an empty body accepts with defaults)');
    }

    let config: TranscodeConfiguration;
    try {
      config = parseTranscodeConfiguration(raw, 'auth webhook');
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      const reason = this.#scrub(err.message, streamKey);
      log.error({ durationMs, reason, code: err.code }, 'auth webhook reply is invalid; stream refused');
      // A bad watermark is the configuration's fault, named as such (400), not a refusal.
      throw new GatewayError(err.code === 'INVALID_WATERMARK' ? 'INVALID_WATERMARK' : 'PUBLISH_DENIED', reason, { cause: err });
    }
    // `outputs`: restream targets started with the stream (mediagate's own field; domain/output-target.ts).
    let outputs: OutputRequest[] | undefined;
    const rawOutputs = (raw as Record<string, unknown>)['outputs'];
    if (rawOutputs !== undefined && rawOutputs !== null) {
      try {
        outputs = parseOutputRequests(rawOutputs, 'auth webhook');
      } catch (err) {
        if (!isGatewayError(err)) throw err;
        log.error({ durationMs, reason: err.message, code: err.code }, 'auth webhook reply has invalid outputs; stream refused');
        throw new GatewayError('PUBLISH_DENIED', err.message, { cause: err });
      }
    }
    const ignoredFields = config.ignoredFields.filter((f) => f !== 'outputs');
    if (ignoredFields.length > 0) {
      log.warn({ ignoredFields }, 'auth webhook reply fields not implemented by mediagate were ignored');
    }
    const manifestID = config.manifestID!;
    const profiles = config.profiles ?? this.#defaultLadder;
    const watermark = config.watermark ? await this.#resolveWatermark(config.watermark, profiles, streamKey, log, durationMs) : config.watermark;
    log.info({
      durationMs, manifestID: manifestID === streamKey ? REDACTED : manifestID,
      ladder: profiles.map((p) => p.name), defaultLadder: config.profiles === undefined, ...(config.record !== undefined ? { record: config.record } : {}),
      ...(outputs ? { outputs: outputs.length } : {}),
    }, 'auth webhook accepted the stream');
    return { manifestID, profiles, ...(config.profiles !== undefined ? { explicitLadder: true } : {}), ...(config.record !== undefined ? { record: config.record } : {}), ...(watermark !== undefined ? { watermark } : {}), ...(outputs ? { outputs } : {}) };
  }

  /**
   * The reply's watermark with its image read from the object store and checked against the ladder.
   * @throws GatewayError INVALID_WATERMARK naming the problem (the stream key scrubbed).
   */
  async #resolveWatermark(request: WatermarkRequest, profiles: readonly VideoProfile[], streamKey: string, log: Logger, durationMs: number): Promise<WatermarkSpec> {
    if (!this.#watermarks) throw new GatewayError('INVALID_WATERMARK', 'auth webhook: watermark: this gateway cannot read watermark images');
    try {
      return await this.#watermarks.resolve(request, ladderFrames(profiles), 'auth webhook: watermark');
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'INVALID_WATERMARK') throw err;
      const reason = this.#scrub(err.message, streamKey);
      log.error({ durationMs, reason, code: err.code }, 'auth webhook reply has an unusable watermark; stream refused');
      throw new GatewayError('INVALID_WATERMARK', reason, { cause: err });
    }
  }

  /** Removes the stream key and the webhook URL's query (it may carry a token) from text bound for a log line or a message. */
  #scrub(text: string, streamKey: string): string {
    let out = text;
    if (this.#url.search.length > 1) out = out.split(this.#url.search).join(REDACTED);
    if (streamKey.length > 0) out = out.split(streamKey).join(REDACTED);
    return out;
  }
}

/**
 * The incoming URL without its query and fragment and with the stream key replaced by
 * `[redacted]`; when the key does not occur in the path, the last path segment is redacted.
 */
export function redactIncomingUrl(url: string, streamKey: string): string {
  const bare = url.split(/[?#]/, 1)[0] ?? '';
  let out = streamKey.length > 0 && bare.includes(streamKey) ? bare.split(streamKey).join(REDACTED) : bare.replace(/[^/]+\/?$/, REDACTED);
  if (out.length > 200) out = `${out.slice(0, 200)}…`;
  return out;
}

/** Reads at most `maxBytes` of the body; cancels the rest. */
async function readBody(response: Response, maxBytes: number): Promise<{ text: string; overLimit: boolean }> {
  const stream = response.body;
  if (stream === null) return { text: '', overLimit: false };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let overLimit = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const room = maxBytes - size;
    if (value.byteLength > room) {
      chunks.push(value.subarray(0, room));
      size += room;
      overLimit = true;
      void reader.cancel().catch(() => undefined);
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { text: new TextDecoder('utf-8').decode(Buffer.concat(chunks)), overLimit };
}

/** A short reason for a transport failure: undici puts the system error (ECONNREFUSED ...) in `cause`. */
function transportReason(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const inner = cause instanceof Error ? cause : err instanceof Error ? err : undefined;
  if (inner === undefined) return String(err).slice(0, 200);
  const code = (inner as { code?: unknown }).code;
  return `${typeof code === 'string' ? `${code}: ` : ''}${inner.message}`.slice(0, 200);
}

/** One line, at most {@link LOG_EXCERPT_CHARS} characters. */
function excerpt(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > LOG_EXCERPT_CHARS ? `${line.slice(0, LOG_EXCERPT_CHARS)}…` : line;
}
