-- Push sessions (src/ingest/push-session-store.ts `exit`): a push of the session is over: its
-- lease leaves the in-flight pushes, a listed source segment is counted, and the idle deadline
-- counts from now (or from the latest lease still live). Uses touch() (push-session-functions.lua).
-- KEYS as push-session-activate.lua.
-- ARGV[1] id; ARGV[2] session; ARGV[3] token; ARGV[4] nowMs; ARGV[5] idleMs; ARGV[6] marginMs;
-- ARGV[7] listed ('1' = the push listed its source segment); ARGV[8] keepMs; ARGV[9] the stream
-- lease key prefix (`<p>:ingest:lease:`).
-- Reply: the idle deadline (epoch ms), or -1 when the session is no longer live (ended elsewhere).
local f = redis.call('HMGET', KEYS[1], 'state', 'session', 'manifestID')
if f[1] ~= 'live' or f[2] ~= ARGV[2] then return -1 end
local nowMs = tonumber(ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'segments', 1) end
return touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], f[3], nowMs, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8]), ARGV[9], ARGV[2])
