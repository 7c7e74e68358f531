-- Stores one worker's health as polled by one gateway for the cluster (worker-pool-store.ts
-- `saveHealth`); an answer from the worker (any status but UNREACHABLE) also renews its
-- registration, so a worker registered once by hand stays while it answers.
-- The answer is dated when it was asked for (now - ARGV[4]), and an answer older than the one
-- stored does not replace it: a slow poll that started before a newer one finished (two
-- gateways, a busy host) must not bring back a status the worker has since left.
-- Takes nowMs from now-ms.lua.
-- KEYS[1] workers <p>:ai:workers; KEYS[2] expiry <p>:ai:expiry; KEYS[3] health <p>:ai:health HASH workerID -> "<status> <checkedAtMs>"
-- ARGV[1] workerID; ARGV[2] status (LOADING|OK|ERROR|IDLE|UNREACHABLE); ARGV[3] registration ttlMs;
-- ARGV[4] the answer's age, ms (how long ago the poll that got it began)
-- Reply: 1 when stored, 0 when the worker is no longer registered (nothing stored),
-- 2 when a newer answer was already stored (kept; the registration is still renewed).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local now = nowMs()
local checkedAt = now - math.max(0, tonumber(ARGV[4]) or 0)
if ARGV[2] ~= 'UNREACHABLE' then redis.call('HSET', KEYS[2], ARGV[1], now + tonumber(ARGV[3])) end
local stored = redis.call('HGET', KEYS[3], ARGV[1])
if stored then
  local storedAt = tonumber(string.match(stored, ' (%d+)$'))
  if storedAt and storedAt > checkedAt then return 2 end
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. ' ' .. checkedAt)
return 1
