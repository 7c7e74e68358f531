-- Segment index (src/hls/segment-index-store.ts `resumeStream`): a publisher reconnected
-- (to any gateway) to a stream that is still live in the index but whose holder is gone:
-- the same session continues from one past the highest seq the index knows (knownEnd, from
-- known-end.lua), and every rendition lists that seq after EXT-X-DISCONTINUITY.
-- KEYS[1] stream      <p>:stream:<m>  HASH
-- KEYS[2] heartbeats  <p>:heartbeats  ZSET
-- KEYS[3..] per rendition its rend and pend keys (<p>:rend:<m>:<r>, <p>:pend:<m>:<r>); any number.
-- ARGV[1] manifestID; ARGV[2] nowMs; ARGV[3] graceMs (ingest.reconnectGraceMs: how long after
-- its heartbeat expired a stream may still be resumed); ARGV[4] the new heartbeat expiry (epoch ms).
-- Reply: {session, nextSeq} when resumed; {} when there is nothing to resume (no stream, ended,
-- or its heartbeat expired more than graceMs ago).
local m, nowMs, graceMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'session', 'state', 'firstSeq')
if not st[1] or st[2] ~= 'live' then return {} end
local score = redis.call('ZSCORE', KEYS[2], m)
if not score or tonumber(score) + graceMs < nowMs then return {} end
local nextSeq = knownEnd(tonumber(st[3] or '0'), 3)
-- Every rendition lists the join (nextSeq) after EXT-X-DISCONTINUITY, however far behind it is
-- (results of seqs before the join, still in flight, list as before).
for i = 3, #KEYS, 2 do redis.call('HSET', KEYS[i], 'discAt', nextSeq) end
redis.call('ZADD', KEYS[2], ARGV[4], m)
redis.call('HSET', KEYS[1], 'resumes', tonumber(redis.call('HGET', KEYS[1], 'resumes') or '0') + 1)
return {st[1], nextSeq}
