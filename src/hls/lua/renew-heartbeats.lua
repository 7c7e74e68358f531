-- Segment index (src/hls/segment-index-store.ts `renewHeartbeats`): renews the heartbeats of
-- the streams a gateway holds.
-- KEYS[1] heartbeats  <p>:heartbeats  ZSET
-- KEYS[2..] each held stream's hash <p>:stream:<m>; any number.
-- ARGV[1] expiresAtMs; then per stream (KEYS[i], i >= 2) ARGV[2i-2] manifestID, ARGV[2i-1] session.
-- Reply: the 0-based positions of the streams whose session is no longer live (ended by
-- another gateway, or replaced).
local lost = {}
for i = 2, #KEYS do
  local m, session = ARGV[2 * i - 2], ARGV[2 * i - 1]
  local st = redis.call('HMGET', KEYS[i], 'session', 'state')
  if st[1] == session and st[2] == 'live' then
    redis.call('ZADD', KEYS[1], ARGV[1], m)
  else
    table.insert(lost, i - 2)
  end
end
return lost
