-- Live transcoding sessions (src/transcode/live-session-store.ts `renew`): compare and renew.
-- The lease is extended while the caller still holds it, or taken back when it expired and
-- nobody took it meanwhile (a Redis outage longer than the lease: the owner carries on);
-- the session record's TTL with it. A finished session (no record) is not renewed.
-- KEYS[1] lease   <p>:transcode:live-lease:<m>:<s>
-- KEYS[2] session <p>:transcode:live:<m>:<s>
-- ARGV[1] owner ID; ARGV[2] leaseMs; ARGV[3] session record TTL, ms.
-- Reply: {held (1|0), state, endSeq} (state and endSeq '' when the lease is not held).
local lease, session = KEYS[1], KEYS[2]
if redis.call('EXISTS', session) == 0 then return {0, '', ''} end
local holder = redis.call('GET', lease)
if holder and holder ~= ARGV[1] then return {0, '', ''} end
redis.call('SET', lease, ARGV[1], 'PX', ARGV[2])
redis.call('PEXPIRE', session, ARGV[3])
local f = redis.call('HMGET', session, 'state', 'endSeq')
return {1, f[1] or 'open', f[2] or ''}
