-- Push sessions (src/ingest/push-session-store.ts `enter`): one push joins the live push
-- session of its stream: its lease is added to the session's in-flight pushes, the session's
-- end seq grows to cover it, and its idle deadline moves. Uses touch() (push-session-functions.lua).
-- KEYS as push-session-activate.lua.
-- ARGV[1] id; ARGV[2] token; ARGV[3] nowMs; ARGV[4] leaseUntilMs; ARGV[5] idleMs; ARGV[6] marginMs;
-- ARGV[7] seq; ARGV[8] keepMs; ARGV[9] the stream lease key prefix (`<p>:ingest:lease:`).
-- Reply: {'none'} (no session: open one), {'opening'} (another push is opening it),
-- {'early', firstSeq} (the seq is below the one that opened the session; nothing changed), or
-- {'live', session, manifestID, accountID, profiles, startedAtMs, deadline, watermark JSON ('' = none)}.
local f = redis.call('HMGET', KEYS[1], 'state', 'session', 'manifestID', 'accountID', 'profiles', 'startedAtMs', 'endSeq', 'firstSeq', 'watermark')
if not f[1] then return {'none'} end
if f[1] ~= 'live' then return {'opening'} end
if f[8] and tonumber(ARGV[7]) < tonumber(f[8]) then return {'early', f[8]} end
local nowMs = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
local next = tonumber(ARGV[7]) + 1
if next > tonumber(f[7] or '0') then redis.call('HSET', KEYS[1], 'endSeq', next) end
local deadline = touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], f[3], nowMs, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8]), ARGV[9], f[2])
return {'live', f[2], f[3], f[4], f[5], f[6], tostring(deadline), f[9] or ''}
