/**
 * Publish authorizers: static stream keys from config, and stream keys issued to accounts
 * through the payments API (tried before the configured authorizer).
 */
import { parseLadder, type VideoProfile } from '../domain/profile.ts';
import { GatewayError } from '../errors/gateway-error.ts';
import { parseWatermarkRequest, type WatermarkSpec } from '../domain/watermark.ts';
import { ladderFrames, type WatermarkResolver } from './watermark-resolver.ts';
import { parseOutputRequests } from '../domain/output-target.ts';
import type { PublishAttempt, PublishAuthorizer, StreamGrant, StreamKeyResolver } from './ingest-ports.ts';

/**
 * Static stream-key authorization from config (docs/wire-contract.md §2). With keys
 * configured, each secret key maps to its public manifest ID; with none, any well-formed
 * name is accepted and is itself the manifest ID (Livepeer's behaviour; config refuses
 * this on a non-loopback bind unless allowAnonymous is set).
 */
export class StaticKeyAuthorizer implements PublishAuthorizer {
  readonly #keys: Map<string, StreamGrant>;
  readonly #defaultLadder: readonly VideoProfile[];

  /**
   * @param keys configured stream keys; a key's `accountID` is the account its streams are
   *   charged to (none: the ingest's default account, if any); its `record` overrides
   *   `recording.enabled` for its streams; its `watermark` (resolved at startup,
   *   `resolveStreamKeyWatermarks`) overrides the default one (`false`: none); its `outputs` are
   *   restream targets started with its streams
   * @throws GatewayError INVALID_PROFILE when a configured ladder is invalid, INVALID_OUTPUT_URL /
   *   UNKNOWN_RENDITION when a configured output is (at startup).
   */
  constructor(keys: readonly { streamKey: string; manifestID: string; profiles?: unknown[]; accountID?: string; record?: boolean; watermark?: WatermarkSpec | false; outputs?: unknown[] }[],
    defaultLadder: readonly VideoProfile[]) {
    this.#defaultLadder = defaultLadder;
    this.#keys = new Map(keys.map((k) => [k.streamKey, {
      manifestID: k.manifestID,
      profiles: k.profiles ? parseLadder(k.profiles) : defaultLadder,
      ...(k.accountID !== undefined ? { accountID: k.accountID } : {}),
      ...(k.record !== undefined ? { record: k.record } : {}),
      ...(k.watermark !== undefined ? { watermark: k.watermark } : {}),
      ...(k.outputs !== undefined && k.outputs.length > 0 ? { outputs: parseOutputRequests(k.outputs, `stream key of ${k.manifestID}`) } : {}),
    }]));
  }

  async authorize({ streamKey }: PublishAttempt): Promise<StreamGrant> {
    if (this.#keys.size === 0) return { manifestID: streamKey, profiles: this.#defaultLadder };
    const grant = this.#keys.get(streamKey);
    if (!grant) throw new GatewayError('PUBLISH_DENIED', 'unknown stream key');
    return grant;
  }
}


/**
 * Stream keys issued to accounts through the payments API, tried before the configured
 * authorizer: a key found there names its account (billed), manifest ID and ladder.
 */
export class AccountStreamKeyAuthorizer implements PublishAuthorizer {
  readonly #keys: StreamKeyResolver;
  readonly #fallback: PublishAuthorizer;
  readonly #defaultLadder: readonly VideoProfile[];

  constructor(keys: StreamKeyResolver, fallback: PublishAuthorizer, defaultLadder: readonly VideoProfile[]) {
    this.#keys = keys;
    this.#fallback = fallback;
    this.#defaultLadder = defaultLadder;
  }

  async authorize(attempt: PublishAttempt): Promise<StreamGrant> {
    const grant = await this.#keys.resolveStreamKey(attempt.streamKey);
    if (!grant) return this.#fallback.authorize(attempt);
    return { manifestID: grant.manifestID, accountID: grant.accountID, profiles: grant.profiles ? parseLadder(grant.profiles) : this.#defaultLadder };
  }
}

/**
 * The configured stream keys with their `watermark` resolved (ingest/watermark-resolver.ts):
 * an object becomes a checked spec with its image in the object store, `false` stays `false`.
 * Run at startup, so a bad image stops the gateway with a message naming the key's index.
 * @throws GatewayError INVALID_WATERMARK naming `streamKeys[i].watermark` and the problem;
 *   INVALID_PROFILE for a bad ladder.
 */
export async function resolveStreamKeyWatermarks<K extends { profiles?: unknown[]; watermark?: unknown }>(keys: readonly K[], defaultLadder: readonly VideoProfile[],
  resolver: Pick<WatermarkResolver, 'resolve'>): Promise<(Omit<K, 'watermark'> & { watermark?: WatermarkSpec | false })[]> {
  return Promise.all(keys.map(async (key, i) => {
    const { watermark, ...rest } = key;
    if (watermark === undefined || watermark === null) return rest;
    if (watermark === false) return { ...rest, watermark: false as const };
    const where = `streamKeys[${i}].watermark`;
    const ladder = key.profiles ? parseLadder(key.profiles) : defaultLadder;
    return { ...rest, watermark: await resolver.resolve(parseWatermarkRequest(watermark, where), ladderFrames(ladder), where) };
  }));
}
