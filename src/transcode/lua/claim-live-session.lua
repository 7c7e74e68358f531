-- Live transcoding sessions (src/transcode/live-session-store.ts `claim`): takes the lease of
-- an unowned session in one step, so of several transcoders racing for it exactly one wins.
-- KEYS[1] session <p>:transcode:live:<m>:<s>        HASH record (JSON), source (JSON), state (open|ended), endSeq, next, owner, claims
-- KEYS[2] lease   <p>:transcode:live-lease:<m>:<s>  STRING owner ID, expiring
-- ARGV[1] owner ID; ARGV[2] leaseMs.
-- Reply: {'gone'} when the session record no longer exists; {'taken'} while another owner's
-- lease holds; {'ok', record, state, endSeq, next, source, claims} when the caller now owns
-- the session (endSeq, next and source '' when unset; claims counts every claim, this one included).
local session, lease = KEYS[1], KEYS[2]
if redis.call('EXISTS', session) == 0 then return {'gone'} end
if not redis.call('SET', lease, ARGV[1], 'NX', 'PX', ARGV[2]) then return {'taken'} end
redis.call('HSET', session, 'owner', ARGV[1])
local claims = redis.call('HINCRBY', session, 'claims', 1)
local f = redis.call('HMGET', session, 'record', 'state', 'endSeq', 'next', 'source')
return {'ok', f[1] or '', f[2] or 'open', f[3] or '', f[4] or '', f[5] or '', tostring(claims)}
