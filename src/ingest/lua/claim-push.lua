-- Push claims (src/ingest/push-claim-store.ts `claimPush`): claims a pushed (manifestID,
-- session, seq) for the push that sent these bytes, in one step, so the same push racing in
-- at two gateways is owned by exactly one of them.
-- KEYS[1] claim   <p>:push:<m>:<s>:<seq>  HASH sha256, state (pending|done|failed), result, leaseUntilMs
-- KEYS[2] pushed  <p>:pushed:<m>:<s>      ZSET of the session's pushed seqs (read by the segment index)
-- ARGV[1] sha256 of the pushed bytes; ARGV[2] nowMs; ARGV[3] leaseUntilMs (how long a pending
-- claim belongs to this push); ARGV[4] ttlS (lifetime of the claim and of the pushed set);
-- ARGV[5] seq.
-- Reply: {'new'} when the caller owns the work (no claim yet; a failed claim corrected with
-- other bytes; a pending claim whose lease passed, taken over); {'conflict'} when other bytes
-- hold it; {'same', state, result} otherwise (result '' until settled).
local claim, pushed = KEYS[1], KEYS[2]
local sha256, nowMs, leaseUntilMs, ttlS = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local stored = redis.call('HMGET', claim, 'sha256', 'state', 'result', 'leaseUntilMs')
if not stored[1] then
  redis.call('HSET', claim, 'sha256', sha256, 'state', 'pending', 'leaseUntilMs', leaseUntilMs)
  redis.call('EXPIRE', claim, ttlS)
  redis.call('ZADD', pushed, ARGV[5], ARGV[5])
  redis.call('EXPIRE', pushed, ttlS)
  return {'new'}
end
if stored[1] ~= sha256 then
  if stored[2] ~= 'failed' then return {'conflict'} end
  -- A failed push may be corrected with other bytes; it is transcoded but was already resolved in the playlists.
  redis.call('HSET', claim, 'sha256', sha256, 'state', 'pending', 'leaseUntilMs', leaseUntilMs)
  redis.call('HDEL', claim, 'result')
  redis.call('EXPIRE', claim, ttlS)
  return {'new'}
end
local state = stored[2] or 'pending'
if state == 'pending' and tonumber(stored[4] or '0') < nowMs then
  -- Abandoned: nobody will settle it. Taking it over is safe, the work is idempotent (job ID, index, hold).
  redis.call('HSET', claim, 'state', 'pending', 'leaseUntilMs', leaseUntilMs)
  redis.call('EXPIRE', claim, ttlS)
  return {'new'}
end
return {'same', state, stored[3] or ''}
