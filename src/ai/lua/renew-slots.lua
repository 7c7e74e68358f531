-- Extends the leases one gateway holds (worker-pool-store.ts `renewLeases`); a lease that is
-- gone (expired and reclaimed) is not brought back. Takes nowMs from now-ms.lua.
-- KEYS[i] the slot ZSET of lease i (see acquire-slot.lua), any number
-- ARGV[1] lease ttlMs; ARGV[1 + i] lease ID i
-- Reply: the number of leases extended.
local now = nowMs()
local ttl = tonumber(ARGV[1])
local renewed = 0
for i = 1, #KEYS do
  renewed = renewed + redis.call('ZADD', KEYS[i], 'XX', 'CH', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], ttl * 2)
end
return renewed
