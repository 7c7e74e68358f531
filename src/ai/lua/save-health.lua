-- Stores one worker's health as polled by one gateway for the cluster (worker-pool-store.ts
-- `saveHealth`); an answer from the worker (any status but UNREACHABLE) also renews its
-- registration, so a worker registered once by hand stays while it answers.
-- Takes nowMs from now-ms.lua.
-- KEYS[1] workers <p>:ai:workers; KEYS[2] expiry <p>:ai:expiry; KEYS[3] health <p>:ai:health HASH workerID -> "<status> <checkedAtMs>"
-- ARGV[1] workerID; ARGV[2] status (LOADING|OK|ERROR|IDLE|UNREACHABLE); ARGV[3] registration ttlMs
-- Reply: 1 when stored, 0 when the worker is no longer registered (nothing stored).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local now = nowMs()
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. ' ' .. now)
if ARGV[2] ~= 'UNREACHABLE' then redis.call('HSET', KEYS[2], ARGV[1], now + tonumber(ARGV[3])) end
return 1
