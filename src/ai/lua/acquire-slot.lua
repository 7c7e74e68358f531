-- Takes one in-flight slot of a worker's (pipeline, model_id) for one request, cluster-wide
-- (worker-pool-store.ts `acquire`): each slot held is a lease that expires unless its gateway
-- renews it, so a gateway that dies holding slots gives them back within one lease TTL.
-- Takes nowMs from now-ms.lua.
-- KEYS[1] slots <p>:ai:slots:<workerID>:<pipeline>:<model_id>  ZSET lease ID -> expiry (epoch ms, server clock)
-- ARGV[1] lease ID; ARGV[2] capacity; ARGV[3] lease ttlMs
-- Reply: {1, leases held now} when taken; {0, leases held now} when the worker is full.
local now = nowMs()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then return {0, held} end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return {1, held + 1}
