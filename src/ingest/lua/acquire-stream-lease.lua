-- Stream ownership leases (src/ingest/stream-lease-store.ts `acquire`): takes the lease of a
-- live manifest ID, or extends it when the caller already holds it, in one step, so of two
-- gateways (or a gateway and a push session) racing for one manifest ID exactly one wins.
-- KEYS[1] lease  <p>:ingest:lease:<m>  STRING owner ID, expiring
-- ARGV[1] owner ID (a gateway member ID, or `push:<session>`); ARGV[2] ttlMs.
-- Reply: {1, ''} when the caller now holds it (new, or its own extended); {0, holder,
-- remainingMs} while another owner holds it.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, holder, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ''}
