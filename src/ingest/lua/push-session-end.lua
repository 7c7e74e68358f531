-- Push sessions (src/ingest/push-session-store.ts `end` and `endIdle`): ends a live push
-- session by deleting it, in one step, so of every gateway trying (idle timers, sweeps, a
-- stop) exactly one wins and runs the stream's end.
-- KEYS[1] session <p>:pushsess:<id> HASH; KEYS[2] inflight ZSET; KEYS[3] idle <p>:pushidle ZSET.
-- ARGV[1] id; ARGV[2] session ('' = whichever is live); ARGV[3] nowMs; ARGV[4] idleOnly ('1' =
-- only when its idle deadline has passed and no push lease is live); ARGV[5] the stream lease key
-- prefix (`<p>:ingest:lease:`, ingest/stream-lease-store.ts): the manifest ID's lease is released
-- when the ended session holds it (owner 'push:' .. session).
-- Reply: {'gone'} (no such session: ended elsewhere, or expired), {'opening'} (being opened),
-- {'busy', deadline} (idleOnly and not idle: its deadline, epoch ms), or
-- {'ended', session, manifestID, accountID, profiles, startedAtMs, endSeq, segments}.
local f = redis.call('HMGET', KEYS[1], 'state', 'session', 'manifestID', 'accountID', 'profiles', 'startedAtMs', 'endSeq', 'segments')
if not f[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
if f[1] ~= 'live' then return {'opening'} end
if ARGV[2] ~= '' and f[2] ~= ARGV[2] then return {'gone'} end
if ARGV[4] == '1' then
  local nowMs = tonumber(ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
  local deadline = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
  if deadline > nowMs or redis.call('ZCARD', KEYS[2]) > 0 then
    local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    if top[2] and tonumber(top[2]) > deadline then deadline = tonumber(top[2]) end
    return {'busy', tostring(deadline)}
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
local lease = ARGV[5] .. f[3]
if redis.call('GET', lease) == 'push:' .. f[2] then redis.call('DEL', lease) end
return {'ended', f[2], f[3], f[4], f[5], f[6], f[7] or '0', f[8] or '0'}
