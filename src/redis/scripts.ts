/**
 * Lua scripts, loaded through ioredis `defineCommand`: ioredis sends EVALSHA and falls back
 * to EVAL on NOSCRIPT (after a Redis restart or SCRIPT FLUSH), so a script's source crosses
 * the wire once per connection, not once per call.
 *
 * Each script lives in its own `.lua` file beside the store that runs it, with a header
 * comment that documents its KEYS and ARGV and its reply. Scripts touch only the keys passed
 * in KEYS, except where the header says it builds a key from the deployment prefix (ARGV).
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * How many KEYS a script takes: a fixed number, or `variable` for a script that takes any
 * number (e.g. a few keys per rendition of a stream): each run then sends the count, as
 * EVALSHA needs it.
 */
export type LuaKeyCount = number | 'variable';

/** A Lua script and the number of KEYS it takes. */
export interface LuaScript {
  /** Command name given to `defineCommand`; `mg` + a camelCase name, unique per process. */
  readonly name: string;
  /** How many leading arguments are KEYS (the rest are ARGV). */
  readonly numberOfKeys: LuaKeyCount;
  /** The Lua source. */
  readonly lua: string;
}

/**
 * Reads a `.lua` file (a URL relative to the caller's module, e.g.
 * `new URL('./reserve.lua', import.meta.url)`) into a `LuaScript`.
 * @param libraries `.lua` files of local functions several scripts of one store share (Redis
 *   scripts cannot load one another), put in front of `file` in the order given; the
 *   script's header names the functions it takes from them.
 * @throws Error when a file cannot be read (at module load: a packaging defect).
 */
export function luaScript(name: string, numberOfKeys: LuaKeyCount, file: URL, libraries: readonly URL[] = []): LuaScript {
  if (!/^mg[A-Z][A-Za-z0-9]*$/.test(name)) throw new Error(`lua script name ${name} must look like mgSomeName`);
  const lua = [...libraries, file].map((part) => readFileSync(part, 'utf8')).join('\n');
  return Object.freeze({ name, numberOfKeys, lua });
}

type ScriptCommand = (...keysAndArgs: string[]) => Promise<unknown>;

/**
 * The scripts of one store on one connection. Defines each script on the connection (once:
 * a script already defined there by another store is reused) and runs them by name.
 */
export class RedisScripts<Name extends string> {
  readonly #redis: Redis;
  readonly #scripts: ReadonlyMap<Name, LuaScript>;

  constructor(redis: Redis, scripts: Readonly<Record<Name, LuaScript>>) {
    this.#redis = redis;
    this.#scripts = new Map(Object.entries(scripts) as [Name, LuaScript][]);
    for (const script of this.#scripts.values()) {
      if (typeof this.#command(script) !== 'function') {
        // Without numberOfKeys, ioredis takes the key count as the first argument of each call.
        redis.defineCommand(script.name, script.numberOfKeys === 'variable' ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua });
      }
    }
  }

  /**
   * Runs script `name` with `keys` (exactly its `numberOfKeys`, or any number for a `variable`
   * one) and `args`; resolves to the script's reply as ioredis decodes it (strings, numbers,
   * arrays, null).
   * @throws RangeError when the number of keys differs from the script's; the Redis error
   *   (a `ReplyError` for a script error) as ioredis reports it.
   */
  async run(name: Name, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const script = this.#scripts.get(name);
    if (script === undefined) throw new RangeError(`unknown lua script ${name}`);
    if (script.numberOfKeys !== 'variable' && keys.length !== script.numberOfKeys) {
      throw new RangeError(`lua script ${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    }
    const command = this.#command(script);
    if (command === undefined) throw new Error(`lua script ${script.name} is not defined on this connection`);
    if (script.numberOfKeys === 'variable') return command.call(this.#redis, String(keys.length), ...keys, ...args);
    return command.call(this.#redis, ...keys, ...args);
  }

  #command(script: LuaScript): ScriptCommand | undefined {
    return (this.#redis as unknown as Record<string, ScriptCommand | undefined>)[script.name];
  }
}
