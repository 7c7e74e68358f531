-- Live transcoding sessions (src/transcode/live-session-store.ts `release` and `finish`):
-- compare and delete. Drops the lease only when the caller holds it; with ARGV[2] = '1' the
-- session is finished too (its record deleted and removed from the open set).
-- KEYS[1] lease   <p>:transcode:live-lease:<m>:<s>
-- KEYS[2] session <p>:transcode:live:<m>:<s>
-- KEYS[3] open    <p>:transcode:live-open           ZSET of '<m>:<s>' by opening time
-- ARGV[1] owner ID; ARGV[2] '1' to finish, '0' to release only; ARGV[3] the open set member.
-- Reply: 1 when the caller held the lease, else 0 (nothing changed).
local lease, session, open = KEYS[1], KEYS[2], KEYS[3]
if redis.call('GET', lease) ~= ARGV[1] then return 0 end
redis.call('DEL', lease)
if ARGV[2] == '1' then
  redis.call('DEL', session)
  redis.call('ZREM', open, ARGV[3])
else
  redis.call('HDEL', session, 'owner')
end
return 1
