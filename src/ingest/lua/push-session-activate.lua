-- Push sessions (src/ingest/push-session-store.ts `activate`): makes a reserved push session
-- live once its stream is open, and enters its first push. Uses touch() (push-session-functions.lua).
-- KEYS[1] session <p>:pushsess:<id> HASH; KEYS[2] inflight <p>:pushsess:<id>:inflight ZSET
-- (push token -> lease end, epoch ms); KEYS[3] idle <p>:pushidle ZSET (id -> idle deadline);
-- KEYS[4] heartbeats <p>:heartbeats ZSET (the segment index's).
-- ARGV[1] owner; ARGV[2] id; ARGV[3] session; ARGV[4] manifestID; ARGV[5] accountID ('' = none);
-- ARGV[6] profiles JSON; ARGV[7] startedAtMs; ARGV[8] token of the first push; ARGV[9] nowMs;
-- ARGV[10] leaseUntilMs; ARGV[11] idleMs; ARGV[12] marginMs; ARGV[13] seq (the session's first seq); ARGV[14] keepMs;
-- ARGV[15] the stream lease key prefix (`<p>:ingest:lease:`); ARGV[16] watermark JSON ('' = none).
-- Reply: the idle deadline (epoch ms), or -1 when the reservation is not the caller's any more.
local f = redis.call('HMGET', KEYS[1], 'state', 'owner')
if f[1] ~= 'opening' or f[2] ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'state', 'live', 'session', ARGV[3], 'manifestID', ARGV[4], 'accountID', ARGV[5], 'profiles', ARGV[6],
  'startedAtMs', ARGV[7], 'firstSeq', ARGV[13], 'endSeq', tonumber(ARGV[13]) + 1, 'segments', 0, 'watermark', ARGV[16] or '')
redis.call('ZADD', KEYS[2], ARGV[10], ARGV[8])
return touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[4], tonumber(ARGV[9]), tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[14]), ARGV[15], ARGV[3])
