-- Stream ownership leases (src/ingest/stream-lease-store.ts `renew`): compare and renew, for
-- every lease a holder keeps, in one step. A lease still held by the caller is extended; one
-- that expired and nobody took meanwhile (the holder was cut off from Redis for longer than
-- the TTL) is taken back; one another owner took is reported lost.
-- KEYS[1..n] leases  <p>:ingest:lease:<m>  STRING owner ID, expiring; any number.
-- ARGV[1] ttlMs; ARGV[i + 1] the owner ID expected for KEYS[i].
-- Reply: the 0-based positions of the leases another owner holds now.
local lost = {}
for i = 1, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[i + 1] then
    table.insert(lost, i - 1)
  else
    redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[1])
  end
end
return lost
