-- Account keys (src/payments/account-store.ts): revokes a key: deletes its secret lookup, frees
-- its manifest ID when it is the live stream key there, and stamps revokedAtMs on the record.
-- KEYS[1] record  <p>:pay:key:<keyID>  HASH
-- ARGV[1] key prefix <p>:pay (the secret and manifest keys are built from it: one Redis, not a cluster);
-- ARGV[2] nowMs.
-- Reply: 1 when revoked now or before; 0 when no such key exists.
local record, P = KEYS[1], ARGV[1]
if redis.call('EXISTS', record) == 0 then return 0 end
if redis.call('HEXISTS', record, 'revokedAtMs') == 1 then return 1 end
local keyID = redis.call('HGET', record, 'keyID')
redis.call('DEL', P .. ':secret:' .. redis.call('HGET', record, 'hash'))
local manifestID = redis.call('HGET', record, 'manifestID')
if manifestID and manifestID ~= '' then
  local manifest = P .. ':manifest:' .. manifestID
  if redis.call('GET', manifest) == keyID then redis.call('DEL', manifest) end
end
redis.call('HSET', record, 'revokedAtMs', ARGV[2])
return 1
