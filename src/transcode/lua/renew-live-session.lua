-- Live transcoding sessions (src/transcode/live-session-store.ts `renew`): compare and renew.
-- The lease is extended only while the caller still holds it; the session record's TTL with it.
-- KEYS[1] lease   <p>:transcode:live-lease:<m>:<s>
-- KEYS[2] session <p>:transcode:live:<m>:<s>
-- ARGV[1] owner ID; ARGV[2] leaseMs; ARGV[3] session record TTL, ms.
-- Reply: {held (1|0), state, endSeq} (state and endSeq '' when the lease is not held).
local lease, session = KEYS[1], KEYS[2]
if redis.call('GET', lease) ~= ARGV[1] then return {0, '', ''} end
redis.call('PEXPIRE', lease, ARGV[2])
redis.call('PEXPIRE', session, ARGV[3])
local f = redis.call('HMGET', session, 'state', 'endSeq')
return {1, f[1] or 'open', f[2] or ''}
