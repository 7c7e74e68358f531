-- Shared by the worker pool's scripts (src/ai/worker-pool-store.ts): the Redis server's clock
-- in ms, so every gateway of a cluster measures leases and expiries on one clock (Redis 7
-- replicates a script's effects, so TIME may be read before writing).
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
