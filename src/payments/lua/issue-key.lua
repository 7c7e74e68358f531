-- Account keys (src/payments/account-store.ts): stores a newly issued API or stream key, hashed.
-- KEYS[1] secret       <p>:pay:secret:<sha256 hex of the key>  HASH the lookup
-- KEYS[2] record       <p>:pay:key:<keyID>                     HASH the record (kept after revoke)
-- KEYS[3] accountKeys  <p>:pay:keys:<accountID>                ZSET key IDs by createdAtMs
-- KEYS[4] manifest     <p>:pay:manifest:<manifestID>           STRING key ID of the live stream key,
--                      or '' for an API key
-- ARGV[1] keyID; ARGV[2] kind (api|stream); ARGV[3] accountID; ARGV[4] label; ARGV[5] manifestID;
-- ARGV[6] profiles (JSON, or ''); ARGV[7] hint (last 4 characters); ARGV[8] hash (sha256 hex);
-- ARGV[9] nowMs.
-- Reply: 1 when stored; 0 when the manifest ID already has a live stream key (nothing changes).
if KEYS[4] ~= '' then
  if redis.call('SET', KEYS[4], ARGV[1], 'NX') == false then return 0 end
end
redis.call('HSET', KEYS[1], 'keyID', ARGV[1], 'kind', ARGV[2], 'accountID', ARGV[3], 'manifestID', ARGV[5], 'profiles', ARGV[6])
redis.call('HSET', KEYS[2], 'keyID', ARGV[1], 'kind', ARGV[2], 'accountID', ARGV[3], 'label', ARGV[4], 'manifestID', ARGV[5],
  'profiles', ARGV[6], 'hint', ARGV[7], 'hash', ARGV[8], 'createdAtMs', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
return 1
