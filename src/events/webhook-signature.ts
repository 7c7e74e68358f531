/**
 * The webhook wire format: body, headers and signature.
 *
 * Request: `POST <url>` with
 *   - body (UTF-8 JSON): `{"id":"<uuid>","type":"<event type>","createdAt":"<ISO 8601>","data":{...}}`,
 *     where `data` is the event's fields without `type`; `id` is the same on every retry of
 *     one event to one receiver (receivers deduplicate on it: delivery is at least once);
 *   - `Content-Type: application/json`
 *   - `Mediagate-Event: <event type>`
 *   - `Mediagate-Delivery: <id>`
 *   - `Mediagate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`
 *     only when a secret is configured.
 *
 * The signature is Stripe's scheme: the timestamp is inside the MAC, so a captured request
 * cannot be replayed once it is older than the receiver's tolerance (300 s by default). It is
 * computed when each attempt is sent, so a retried delivery carries a fresh `t`. Receivers
 * must verify against the raw body bytes, before any JSON parsing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { GatewayEvent, GatewayEventData, GatewayEventType } from './events.ts';

export const EVENT_HEADER = 'Mediagate-Event';
export const DELIVERY_HEADER = 'Mediagate-Delivery';
export const SIGNATURE_HEADER = 'Mediagate-Signature';

/** Default replay window of `verifySignature`, in seconds (Stripe's default). */
export const DEFAULT_SIGNATURE_TOLERANCE_S = 300;

/** The parsed request body. */
export interface WebhookBody<E extends GatewayEvent = GatewayEvent> {
  /** Delivery ID (UUID v4), stable across retries. */
  id: string;
  type: E['type'];
  /** When the event was emitted, ISO 8601 UTC (e.g. `2026-05-01T12:00:00.000Z`). */
  createdAt: string;
  data: GatewayEventData<E>;
}

/**
 * Serializes an event into the body bytes that are signed and sent.
 * @param meta.id delivery ID (UUID); `meta.createdAt` ISO 8601 timestamp
 * @returns compact JSON `{"id","type","createdAt","data"}`
 */
export function serializeWebhookBody(event: GatewayEvent, meta: { id: string; createdAt: string }): string {
  const { type, ...data } = event;
  const body: WebhookBody = { id: meta.id, type, createdAt: meta.createdAt, data };
  return JSON.stringify(body);
}

/**
 * The `Mediagate-Signature` value for `body` at `nowS`:
 * `t=<nowS>,v1=<lower-case hex HMAC-SHA256 keyed with secret over the UTF-8 bytes "<nowS>.<body>">`.
 * @param secret shared secret (UTF-8); must not be empty
 * @param body the raw request body, exactly as sent
 * @param nowS signing time in whole Unix seconds
 * @throws Error when `secret` is empty or `nowS` is not a non-negative integer
 */
export function signPayload(secret: string, body: string | Uint8Array, nowS: number): string {
  if (secret === '') throw new Error('webhook signing secret is empty');
  if (!Number.isSafeInteger(nowS) || nowS < 0) throw new Error(`signature timestamp must be whole Unix seconds, got ${nowS}`);
  return `t=${nowS},v1=${hmacHex(secret, nowS, body)}`;
}

export interface VerifyOptions {
  /** Largest accepted |now − t| in seconds; default 300. */
  toleranceS?: number;
  /** The verifier's clock in Unix seconds; default the current time. */
  nowS?: number;
}

/**
 * Checks a `Mediagate-Signature` header against the raw body: true when the header has a
 * `t` within `toleranceS` of `nowS` (either direction, for clock skew) and at least one
 * `v1` equal to HMAC-SHA256(secret, "<t>.<body>") (several `v1` entries are allowed, as
 * during a secret rotation). Compares in constant time (`crypto.timingSafeEqual`).
 * Never throws: a malformed header, an empty secret or a missing header give false.
 */
export function verifySignature(secret: string, body: string | Uint8Array, header: string | null | undefined, options: VerifyOptions = {}): boolean {
  if (secret === '' || typeof header !== 'string') return false;
  const toleranceS = options.toleranceS ?? DEFAULT_SIGNATURE_TOLERANCE_S;
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,15}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (t === undefined || candidates.length === 0) return false;
  if (Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex');
  let ok = false;
  for (const candidate of candidates) {
    // Every candidate is compared (no early exit) so timing does not reveal which matched.
    if (timingSafeEqual(expected, Buffer.from(candidate, 'hex'))) ok = true;
  }
  return ok;
}

/**
 * The headers of one delivery attempt (see the module comment); the signature header is
 * present only when `secret` is non-empty.
 * @param nowS signing time in Unix seconds (the attempt's send time)
 */
export function webhookHeaders(input: { id: string; type: GatewayEventType; body: string; secret: string; nowS: number }): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    [EVENT_HEADER]: input.type,
    [DELIVERY_HEADER]: input.id,
  };
  if (input.secret !== '') headers[SIGNATURE_HEADER] = signPayload(input.secret, input.body, input.nowS);
  return headers;
}

function hmacHex(secret: string, t: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}
