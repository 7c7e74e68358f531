/**
 * The API-key authorizers of the AI API (openapi/ai.yaml): who is calling, resolved from the
 * bearer API key, either from the keys in config ({@link StaticApiKeyAuthorizer}) or from the
 * keys issued to accounts ({@link AccountApiKeyAuthorizer}, tried first). The AI routes
 * (ai-routes.ts) call the authorizer before validating a pipeline request.
 */
import { GatewayError } from '../errors/gateway-error.ts';

/** Who is calling: resolved from the bearer API key. */
export interface AiCaller {
  /** Account charged for the request; absent = the request is not metered. */
  readonly accountID?: string;
}

/** Pluggable request authorization (the payments work fills it with accounts and balances). */
export interface AiRequestAuthorizer {
  /** @throws GatewayError UNAUTHORIZED (401) */
  authorize(apiKey: string | undefined): Promise<AiCaller>;
}

/**
 * API keys from config. With none configured, anonymous callers are accepted only while the
 * gateway binds loopback. Callers it accepts are charged to `accountID` (the gateway passes
 * `local` on a loopback bind, where that account exists); without one they are not metered
 * (a public bind, where no `local` account exists: meter callers with account API keys from
 * the payments API instead).
 */
export class StaticApiKeyAuthorizer implements AiRequestAuthorizer {
  readonly #keys: ReadonlySet<string>;
  readonly #loopbackOnly: boolean;
  readonly #caller: AiCaller;

  constructor(keys: readonly string[], loopbackOnly: boolean, accountID: string | undefined) {
    this.#keys = new Set(keys);
    this.#loopbackOnly = loopbackOnly;
    this.#caller = accountID === undefined ? {} : { accountID };
  }

  async authorize(apiKey: string | undefined): Promise<AiCaller> {
    if (this.#keys.size === 0) {
      if (this.#loopbackOnly) return this.#caller;
      throw new GatewayError('UNAUTHORIZED', 'no API keys are configured and the gateway is not on loopback: set ai.apiKeys (MEDIAGATE_AI_API_KEYS)');
    }
    if (apiKey === undefined) throw new GatewayError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
    if (!this.#keys.has(apiKey)) throw new GatewayError('UNAUTHORIZED', 'invalid API key');
    return this.#caller;
  }
}

/** API keys issued to accounts (payments/account-store.ts), tried before the configured authorizer. */
export class AccountApiKeyAuthorizer implements AiRequestAuthorizer {
  readonly #keys: { resolveApiKey(key: string): Promise<string | undefined> };
  readonly #fallback: AiRequestAuthorizer;

  constructor(keys: { resolveApiKey(key: string): Promise<string | undefined> }, fallback: AiRequestAuthorizer) {
    this.#keys = keys;
    this.#fallback = fallback;
  }

  async authorize(apiKey: string | undefined): Promise<AiCaller> {
    const accountID = apiKey === undefined ? undefined : await this.#keys.resolveApiKey(apiKey);
    return accountID ? { accountID } : this.#fallback.authorize(apiKey);
  }
}
