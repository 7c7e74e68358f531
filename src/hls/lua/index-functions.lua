-- Segment index (src/hls/segment-index-store.ts): the local functions record.lua and
-- resolve.lua share, put in front of each of them when they are loaded (redis/scripts.ts
-- `luaScript`, its `libraries`); Redis scripts cannot load one another.
-- A rendition's keys are the table K = {pend, rend, list, wait, gaps}, the five KEYS from
-- `base` on (keysAt(base)); RETAIN (listed entries kept) and BOUND (ms) are set by each
-- script before use.
-- - frontierOf(K, firstSeq): the next seq to list (firstSeq before anything was listed).
-- - oldestWait(K): when the oldest pending result arrived (epoch ms), or nil.
-- - minPending(K, frontier): the lowest pending seq at or past the frontier (drops those below).
-- - inGap(K, seq): seq lies in a run resolved as failed.
-- - pendingRangeCovers(K, seq): seq lies in a pending failed run (an entry with skipTo).
-- - skip(K, from, to): resolves [from, to) as failed at the frontier (one discontinuity for the run).
-- - drain(K, frontier, nowMs): lists what is pending at the frontier onwards, in order;
--   returns the new frontier and how many segments it listed.
-- - addRange(K, from, to, firstSeq, nowMs, reason): marks [from, to) as failed ahead of (or
--   at) the frontier, one pending entry per run between seqs already pending.
local RETAIN, BOUND = 0, 0
local function keysAt(base)
  return {pend = KEYS[base], rend = KEYS[base + 1], list = KEYS[base + 2], wait = KEYS[base + 3], gaps = KEYS[base + 4]}
end
local function frontierOf(K, firstSeq)
  return tonumber(redis.call('HGET', K.rend, 'frontier') or firstSeq)
end
local function oldestWait(K)
  local w = redis.call('ZRANGE', K.wait, 0, 0, 'WITHSCORES')
  if w[1] then return tonumber(w[2]) end
  return nil
end
local function minPending(K, frontier)
  local low = nil
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s < frontier then
      redis.call('HDEL', K.pend, k)
      redis.call('ZREM', K.wait, k)
    elseif low == nil or s < low then
      low = s
    end
  end
  return low
end
local function inGap(K, seq)
  local g = redis.call('HGETALL', K.gaps)
  for i = 1, #g, 2 do
    if seq >= tonumber(g[i]) and seq < tonumber(g[i + 1]) then return true end
  end
  return false
end
local function pendingRangeCovers(K, seq)
  local p = redis.call('HGETALL', K.pend)
  for i = 1, #p, 2 do
    if string.find(p[i + 1], '"skipTo"', 1, true) then
      local o = cjson.decode(p[i + 1])
      if seq >= tonumber(p[i]) and seq < o.skipTo then return true end
    end
  end
  return false
end
local function skip(K, from, to)
  redis.call('HINCRBY', K.rend, 'failed', to - from)
  redis.call('HSET', K.rend, 'pendingDisc', 1)
  local lastFrom = redis.call('HGET', K.rend, 'lastGapFrom')
  if lastFrom and tonumber(redis.call('HGET', K.gaps, lastFrom) or '-1') == from then
    redis.call('HSET', K.gaps, lastFrom, to)
  else
    redis.call('HSET', K.gaps, from, to)
    redis.call('HSET', K.rend, 'lastGapFrom', from)
  end
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s >= from and s < to then
      local raw = redis.call('HGET', K.pend, k)
      local arrived = redis.call('ZSCORE', K.wait, k)
      redis.call('HDEL', K.pend, k)
      redis.call('ZREM', K.wait, k)
      local o = cjson.decode(raw)
      if o.skipTo and o.skipTo > to then
        redis.call('HSET', K.pend, to, cjson.encode({status = 'failed', seq = to, skipTo = o.skipTo, reason = o.reason}))
        redis.call('ZADD', K.wait, 'NX', arrived or 0, to)
      end
    end
  end
end
local function drain(K, frontier, nowMs)
  local listed = 0
  while true do
    local raw = redis.call('HGET', K.pend, frontier)
    if not raw then break end
    redis.call('HDEL', K.pend, frontier)
    redis.call('ZREM', K.wait, frontier)
    local o = cjson.decode(raw)
    if o.status == 'ok' then
      local s = o.segment
      local count = tonumber(redis.call('HGET', K.rend, 'count') or '0')
      local disc = tonumber(redis.call('HGET', K.rend, 'disc') or '0')
      -- discAt: the seq a resumed session went on at (resume-stream.lua): its join, whoever lists it.
      local flag = (redis.call('HGET', K.rend, 'pendingDisc') == '1') or (o.discontinuity == true)
        or (tonumber(redis.call('HGET', K.rend, 'discAt') or '-1') == frontier)
      if flag and count > 0 then disc = disc + 1 else flag = false end
      redis.call('RPUSH', K.list, cjson.encode({seq = frontier, d = s.durationMs, disc = flag, ds = disc}))
      local bps = 0
      if s.durationMs > 0 then bps = math.floor(s.bytes * 8000 / s.durationMs) end
      local peak = tonumber(redis.call('HGET', K.rend, 'peakBps') or '0')
      if bps > peak then peak = bps end
      redis.call('HSET', K.rend, 'count', count + 1, 'disc', disc, 'pendingDisc', 0, 'peakBps', peak,
        'width', s.width, 'height', s.height, 'codecs', s.codecs, 'frameRate', tostring(s.frameRate))
      redis.call('HINCRBY', K.rend, 'bytes', s.bytes)
      redis.call('HINCRBY', K.rend, 'durationMs', s.durationMs)
      listed = listed + 1
      frontier = frontier + 1
    else
      local to = frontier + 1
      if o.skipTo and o.skipTo > to then to = o.skipTo end
      skip(K, frontier, to)
      frontier = to
    end
  end
  redis.call('HSET', K.rend, 'frontier', frontier)
  if listed > 0 then redis.call('HSET', K.rend, 'lastListedAtMs', nowMs) end
  redis.call('LTRIM', K.list, -RETAIN, -1)
  return frontier, listed
end
local function addRange(K, from, to, firstSeq, nowMs, reason)
  local frontier = frontierOf(K, firstSeq)
  if from < frontier then from = frontier end
  if to <= from then return end
  -- Split around what is already pending, so no result or earlier range is overwritten.
  local inside = {}
  for _, k in ipairs(redis.call('HKEYS', K.pend)) do
    local s = tonumber(k)
    if s >= from and s < to then table.insert(inside, s) end
  end
  table.sort(inside)
  table.insert(inside, to)
  local x = from
  for _, y in ipairs(inside) do
    if y > x then
      redis.call('HSET', K.pend, x, cjson.encode({status = 'failed', seq = x, skipTo = y, reason = reason}))
      redis.call('ZADD', K.wait, 'NX', nowMs, x)
    end
    x = y + 1
  end
end
