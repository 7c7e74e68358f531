/**
 * The desired restream outputs of each stream and their state, in Redis, so any gateway
 * answers the control API from it and the gateway that holds the stream (its ingest lease)
 * runs them (docs/architecture.md, "Restream outputs").
 *
 * Keys (deployment prefix `p`, manifest ID `m`):
 * - `p:out:list:m`   HASH  output ID → spec JSON `{id, url, rendition, createdAtMs, origin}` (the
 *                          desired outputs; `url` in clear: the holder's ffmpeg needs it)
 * - `p:out:state:m`  HASH  output ID → state JSON `{state, reason?, bytesSent, liveSinceMs?,
 *                          startedAtMs?, updatedAtMs}`, written by the holder
 * Both live while the stream does; when it ends they expire after `endedKeepS` (its last
 * states stay readable). A new session of the manifest ID replaces both (`reset`).
 * Adding is one Lua script (lua/add-output.lua): the `maxPerStream` bound holds across gateways.
 */
import type { Redis } from '../redis/connections.ts';
import type { RedisKeys } from '../redis/keys.ts';
import { RedisScripts, luaScript } from '../redis/scripts.ts';
import type { OutputSpec, OutputStatus } from './output-types.ts';

const OUTPUT_SCRIPTS = {
  add: luaScript('mgOutputAdd', 1, new URL('./lua/add-output.lua', import.meta.url)),
};

export interface RedisOutputsOptions {
  /** The `state` connection (request/response commands), opened and closed by the composition root. */
  redis: Redis;
  /** Keys under the deployment prefix (`redis.keyPrefix`). */
  keys: RedisKeys;
}

export class RedisOutputs {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  readonly #scripts: RedisScripts<keyof typeof OUTPUT_SCRIPTS>;

  constructor(options: RedisOutputsOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#scripts = new RedisScripts(options.redis, OUTPUT_SCRIPTS);
  }

  #list(manifestID: string): string {
    return this.#keys.key('out', 'list', manifestID);
  }

  #state(manifestID: string): string {
    return this.#keys.key('out', 'state', manifestID);
  }

  /** Replaces the stream's outputs with `specs` (a new session) and forgets every earlier state; persists until {@link expire}. */
  async reset(manifestID: string, specs: readonly OutputSpec[]): Promise<void> {
    const tx = this.#redis.multi().del(this.#list(manifestID), this.#state(manifestID));
    if (specs.length > 0) tx.hset(this.#list(manifestID), Object.fromEntries(specs.map((s) => [s.id, JSON.stringify(s)])));
    await tx.exec();
  }

  /**
   * Adds one output unless the stream has `maxPerStream` already.
   * @returns false when refused for the bound
   */
  async add(manifestID: string, spec: OutputSpec, maxPerStream: number): Promise<boolean> {
    return Number(await this.#scripts.run('add', [this.#list(manifestID)], [spec.id, JSON.stringify(spec), String(maxPerStream)])) === 1;
  }

  /** Removes an output and its state; false when the stream has no output `id`. */
  async remove(manifestID: string, id: string): Promise<boolean> {
    const [[, removed]] = (await this.#redis.multi().hdel(this.#list(manifestID), id).hdel(this.#state(manifestID), id).exec())! as [[unknown, number], [unknown, number]];
    return Number(removed) === 1;
  }

  /** The stream's desired outputs (creation order), each with its last state (absent: none written yet). */
  async list(manifestID: string): Promise<{ spec: OutputSpec; status?: OutputStatus }[]> {
    const [[, specs], [, states]] = (await this.#redis.multi().hgetall(this.#list(manifestID)).hgetall(this.#state(manifestID)).exec())! as
      [[unknown, Record<string, string>], [unknown, Record<string, string>]];
    return Object.entries(specs)
      .map(([id, text]) => {
        const spec = JSON.parse(text) as OutputSpec;
        const state = states[id];
        return state === undefined ? { spec } : { spec, status: JSON.parse(state) as OutputStatus };
      })
      .sort((a, b) => a.spec.createdAtMs - b.spec.createdAtMs || a.spec.id.localeCompare(b.spec.id));
  }

  /** Writes the states of several outputs of one stream (one round trip); states of outputs removed meanwhile are dropped at the next reset or expiry. */
  async setStates(manifestID: string, states: ReadonlyMap<string, OutputStatus>): Promise<void> {
    if (states.size === 0) return;
    await this.#redis.hset(this.#state(manifestID), Object.fromEntries([...states].map(([id, s]) => [id, JSON.stringify(s)])));
  }

  /** The stream ended: its outputs and their last states expire after `keepS` seconds. */
  async expire(manifestID: string, keepS: number): Promise<void> {
    await this.#redis.multi().expire(this.#list(manifestID), keepS).expire(this.#state(manifestID), keepS).exec();
  }
}
