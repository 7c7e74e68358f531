-- Segment index (src/hls/segment-index-store.ts `endStream` and the sweep): marks a stream ended.
-- Uses knownEnd from known-end.lua.
-- KEYS[1] stream      <p>:stream:<m>  HASH
-- KEYS[2] due         <p>:due         ZSET
-- KEYS[3] heartbeats  <p>:heartbeats  ZSET
-- KEYS[4..] per rendition its rend and pend keys (<p>:rend:<m>:<r>, <p>:pend:<m>:<r>); any number.
-- ARGV[1] manifestID; ARGV[2] session ('' = whichever session holds it); ARGV[3] endSeq (-1 = one
-- past the highest seq the index knows); ARGV[4] nowMs; ARGV[5] resolveAtMs; ARGV[6]
-- requireExpired ('1' = only when its heartbeat expired); ARGV[7] endWaitMs (how long after a
-- rendition's last result its missing seqs may be resolved); ARGV[8] graceMs (with requireExpired:
-- how long after its heartbeat expired the stream is kept live for its publisher to reconnect,
-- ingest.reconnectGraceMs; absent = 0).
-- Reply: 1 when it ended the stream now, else 0.
local m, session, endSeq, nowMs, resolveAt, requireExpired, endWait = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local graceMs = tonumber(ARGV[8] or '0')
if requireExpired == '1' then
  local score = redis.call('ZSCORE', KEYS[3], m)
  if not score or tonumber(score) + graceMs > nowMs then return 0 end
end
local st = redis.call('HMGET', KEYS[1], 'session', 'state', 'firstSeq')
if not st[1] then
  redis.call('ZREM', KEYS[3], m)
  return 0
end
if session ~= '' and st[1] ~= session then return 0 end
redis.call('ZREM', KEYS[3], m)
if st[2] == 'ended' then return 0 end
if endSeq < 0 then endSeq = knownEnd(tonumber(st[3] or '0'), 4) end
redis.call('HSET', KEYS[1], 'state', 'ended', 'endSeq', endSeq, 'endedAtMs', nowMs, 'resolveAtMs', resolveAt, 'endWaitMs', endWait)
redis.call('ZADD', KEYS[2], resolveAt, m)
return 1
