/**
 * The ports live video-to-video sessions (src/ai/live/) need from the rest of the gateway;
 * src/app.ts passes the implementations (docs/wire-contract.md, "Live video-to-video").
 */

/**
 * Interval payments of one live session, Livepeer's scheme: a hold at start covering 60 s,
 * then a debit for every 5 s of wall time at the configured live price (default units as
 * Livepeer: 1280×720×30 per second). Implemented in src/payments/.
 *
 * Which account pays: the start request's API-key account, else the input stream's
 * account, else the session is not metered (`accountID` undefined).
 */
export interface LiveIntervalBilling {
  /** The 60 s hold at start. @throws GatewayError INSUFFICIENT_BALANCE (402) when it cannot be held. */
  open(s: { requestID: string; accountID: string | undefined; pipeline: string; modelID: string }): Promise<void>;
  /** Debit `seconds` of wall time for interval `interval` (idempotent per requestID+interval). */
  charge(s: { requestID: string; interval: number; seconds: number }): Promise<{ ok: true } | { ok: false; reason: 'insufficient balance' }>;
  /** Release what is left of the hold. Idempotent. */
  close(requestID: string): Promise<void>;
}
