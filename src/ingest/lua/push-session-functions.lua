-- Push sessions (src/ingest/push-session-store.ts): the local function the enter, activate and
-- exit scripts share, put in front of each when it is loaded.
-- touch(sess, inflight, idle, heartbeats, id, manifestID, nowMs, idleMs, marginMs, keepMs, leasePrefix, session):
-- the session's idle deadline becomes max(now, the latest live push lease) + idleMs, written
-- to the idle ZSET (member id) and, plus marginMs, to the segment index's heartbeat of the
-- manifest ID (so the index sweep does not end a push stream that no gateway holds in memory
-- before the push sweep ends it); both hashes live keepMs past the deadline. The stream lease of
-- the manifest ID (ingest/stream-lease-store.ts: the key leasePrefix .. manifestID, built here
-- from the deployment prefix), when the session holds it (owner 'push:' .. session), lasts to
-- the same time as the heartbeat, so an RTMP publish of it is refused while the session lives.
-- Returns the deadline.
local function touch(sess, inflight, idle, heartbeats, id, manifestID, nowMs, idleMs, marginMs, keepMs, leasePrefix, session)
  local base = nowMs
  local top = redis.call('ZRANGE', inflight, -1, -1, 'WITHSCORES')
  if top[2] and tonumber(top[2]) > base then base = tonumber(top[2]) end
  local deadline = base + idleMs
  redis.call('ZADD', idle, deadline, id)
  redis.call('ZADD', heartbeats, deadline + marginMs, manifestID)
  redis.call('PEXPIRE', sess, deadline - nowMs + keepMs)
  redis.call('PEXPIRE', inflight, deadline - nowMs + keepMs)
  local lease = leasePrefix .. manifestID
  if redis.call('GET', lease) == 'push:' .. session then redis.call('PEXPIRE', lease, deadline + marginMs - nowMs) end
  return deadline
end
