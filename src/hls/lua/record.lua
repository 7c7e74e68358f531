-- Segment index (src/hls/segment-index-store.ts `record`): records one outcome of one
-- rendition and lists every segment that became listable. Uses keysAt, frontierOf, inGap,
-- pendingRangeCovers, drain and oldestWait from index-functions.lua.
-- KEYS[1] stream  <p>:stream:<m>     HASH
-- KEYS[2] rends   <p>:rends:<m>      SET of recorded renditions
-- KEYS[3] due     <p>:due            ZSET
-- KEYS[4..8] the rendition's pend, rend, list, wait, gaps (<p>:pend:<m>:<r> ... <p>:gaps:<m>:<r>)
-- ARGV[1] session; ARGV[2] seq; ARGV[3] outcome JSON (domain/segment.ts SegmentOutcome);
-- ARGV[4] retain (listed entries kept); ARGV[5] rendition; ARGV[6] nowMs; ARGV[7] boundMs
-- (hls.maxSegmentWaitMs); ARGV[8] manifestID.
-- Reply: {status, listed}: status 1 accepted (listed, pending, or a repeat of either), 0 refused
-- (the seq was already resolved as failed/skipped), -1 another session; listed = segments
-- newly listed by this call.
local session, seq, outcome, rendition, nowMs, m = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5], tonumber(ARGV[6]), ARGV[8]
RETAIN, BOUND = tonumber(ARGV[4]), tonumber(ARGV[7])
local st = redis.call('HMGET', KEYS[1], 'session', 'firstSeq')
if st[1] ~= session then return {-1, 0} end
redis.call('SADD', KEYS[2], rendition)
local K = keysAt(4)
local frontier = frontierOf(K, st[2] or '0')
if seq < frontier then
  if inGap(K, seq) then return {0, 0} end
  return {1, 0}
end
local existing = redis.call('HGET', K.pend, seq)
if existing then
  if cjson.decode(existing).status == 'ok' then return {1, 0} end
  return {0, 0}
end
if pendingRangeCovers(K, seq) then return {0, 0} end
redis.call('HSET', K.rend, 'lastRecordAtMs', nowMs)
redis.call('HSET', K.pend, seq, outcome)
redis.call('ZADD', K.wait, 'NX', nowMs, seq)
local _, listed = drain(K, frontier, nowMs)
local oldest = oldestWait(K)
if oldest then redis.call('ZADD', KEYS[3], 'LT', oldest + BOUND, m) end
return {1, listed}
