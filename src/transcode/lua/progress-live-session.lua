-- Live transcoding sessions (src/transcode/live-session-store.ts `progress`): records the next
-- seq the session has to make, only while the caller holds the lease, and never backwards.
-- KEYS[1] lease   <p>:transcode:live-lease:<m>:<s>
-- KEYS[2] session <p>:transcode:live:<m>:<s>
-- ARGV[1] owner ID; ARGV[2] next seq.
-- Reply: 1 when recorded (or already at or past it), 0 when the lease is not the caller's.
local lease, session = KEYS[1], KEYS[2]
if redis.call('GET', lease) ~= ARGV[1] then return 0 end
local current = tonumber(redis.call('HGET', session, 'next') or '-1')
if tonumber(ARGV[2]) > current then redis.call('HSET', session, 'next', ARGV[2]) end
return 1
