-- Segment index (src/hls/segment-index-store.ts `resolve`): resolves what waited too long in
-- every rendition of one stream, and with a push gap every never-pushed seq below it. Uses
-- keysAt, frontierOf, oldestWait, minPending, skip, drain and addRange from index-functions.lua.
-- KEYS[1] stream  <p>:stream:<m>     HASH
-- KEYS[2] due     <p>:due            ZSET
-- KEYS[3] pushed  <p>:pushed:<m>:<s> ZSET of pushed seqs (written by the push claims)
-- KEYS[4..] 5 keys per rendition (pend, rend, list, wait, gaps), `source` first; any number.
-- ARGV[1] manifestID; ARGV[2] session; ARGV[3] nowMs; ARGV[4] boundMs; ARGV[5] retain;
-- ARGV[6] gapTo (-1: no push gap to resolve).
-- Reply: {listed, skipped}: segments newly listed, seqs skipped by the wait rules (summed over
-- renditions); -1 when the session changed.
local m, session, nowMs, gapTo = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[6])
BOUND, RETAIN = tonumber(ARGV[4]), tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'session', 'state', 'endSeq', 'firstSeq', 'resolveAtMs', 'endWaitMs')
if st[1] ~= session then return -1 end
local ended = st[2] == 'ended'
local endSeq = tonumber(st[3] or '-1')
local firstSeq = tonumber(st[4] or '0')
local resolveAt = tonumber(st[5] or '0')
local endWait = tonumber(st[6] or BOUND)
local ranges = {}
if gapTo >= 0 then
  local claimed = redis.call('ZREVRANGEBYSCORE', KEYS[3], '(' .. gapTo, '-inf', 'LIMIT', 0, 1)
  local lo = firstSeq
  if claimed[1] then lo = tonumber(claimed[1]) + 1 end
  if lo < gapTo then table.insert(ranges, {lo, gapTo, 'never pushed'}) end
end
local total, skipped, nextDue = 0, 0, nil
local n = (#KEYS - 3) / 5
for i = 1, n do
  local K = keysAt(4 + (i - 1) * 5)
  for _, r in ipairs(ranges) do addRange(K, r[1], r[2], firstSeq, nowMs, r[3]) end
  local f, listed = drain(K, frontierOf(K, firstSeq), nowMs)
  total = total + listed
  while not (ended and f >= endSeq) do
    local target = nil
    local oldest = oldestWait(K)
    local low = minPending(K, f)
    if oldest and low and nowMs >= oldest + BOUND then
      target = low
    elseif ended and nowMs >= resolveAt and nowMs >= tonumber(redis.call('HGET', K.rend, 'lastRecordAtMs') or '0') + endWait then
      target = endSeq
      if low and low < endSeq then target = low end
    end
    if not target or target <= f then break end
    skip(K, f, target)
    skipped = skipped + (target - f)
    if i == 1 then table.insert(ranges, {f, target, 'source segment missing'}) end
    f, listed = drain(K, target, nowMs)
    total = total + listed
  end
  local due = nil
  local oldest = oldestWait(K)
  if oldest and not (ended and f >= endSeq) then due = oldest + BOUND end
  if ended and f < endSeq then
    local atEnd = math.max(resolveAt, tonumber(redis.call('HGET', K.rend, 'lastRecordAtMs') or '0') + endWait)
    if due == nil or atEnd < due then due = atEnd end
  end
  if due and (nextDue == nil or due < nextDue) then nextDue = due end
end
if nextDue then
  redis.call('ZADD', KEYS[2], math.max(nextDue, nowMs + 1), m)
else
  redis.call('ZREM', KEYS[2], m)
end
return {total, skipped}
