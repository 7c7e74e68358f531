-- Registers or renews one AI worker in the cluster's pool (worker-pool-store.ts `saveWorker`).
-- Takes nowMs from now-ms.lua.
-- KEYS[1] workers  <p>:ai:workers  HASH workerID -> registration JSON
-- KEYS[2] expiry   <p>:ai:expiry   HASH workerID -> epoch ms (server clock) the registration expires at
-- ARGV[1] workerID; ARGV[2] registration JSON; ARGV[3] ttlMs
-- Reply: 1 when the worker was new to the pool, 0 when it was renewed.
local isNew = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], nowMs() + tonumber(ARGV[3]))
return isNew
