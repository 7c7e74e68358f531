-- Reads the whole AI worker pool for one gateway's cache (worker-pool-store.ts `read`), and
-- drops registrations past their expiry. Takes nowMs from now-ms.lua.
-- KEYS[1] workers <p>:ai:workers; KEYS[2] expiry <p>:ai:expiry; KEYS[3] health <p>:ai:health
-- ARGV[1] slot key prefix `<p>:ai:slots:`: this script builds each capability's slot key
--   `<prefix><workerID>:<pipeline>:<model_id>` (a ZSET of leases, see acquire-slot.lua) from it.
-- Reply: {nowMs, {workerID, registration JSON, health ("<status> <checkedAtMs>" or ''),
--   {in-flight leases per capability, in the registration's order}} ...}
local now = nowMs()
local out = {}
local expiry = redis.call('HGETALL', KEYS[2])
for i = 1, #expiry, 2 do
  local id, expiresAt = expiry[i], tonumber(expiry[i + 1])
  local json = redis.call('HGET', KEYS[1], id)
  if expiresAt < now or not json then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  else
    local counts = {}
    local ok, registration = pcall(cjson.decode, json)
    if ok and type(registration.pipelines) == 'table' then
      for _, p in ipairs(registration.pipelines) do
        counts[#counts + 1] = redis.call('ZCOUNT', ARGV[1] .. id .. ':' .. p.pipeline .. ':' .. p.model_id, now, '+inf')
      end
    end
    out[#out + 1] = {id, json, redis.call('HGET', KEYS[3], id) or '', counts}
  end
end
return {now, out}
