-- Stream ownership leases (src/ingest/stream-lease-store.ts `release`): compare and delete.
-- KEYS[1] lease  <p>:ingest:lease:<m>  STRING owner ID, expiring
-- ARGV[1] owner ID.
-- Reply: 1 when the caller held the lease (now deleted), else 0 (nothing changed).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
