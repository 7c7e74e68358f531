-- Segment index: a local function shared by end-stream.lua and resume-stream.lua (put in front
-- of them when they are loaded, src/hls/segment-index-store.ts).
-- knownEnd(firstSeq, from): one past the highest seq the index knows of a stream: its first
-- seq, each rendition's frontier, each pending result (a pending failed run to its skipTo).
-- KEYS[from..] are per rendition its rend and pend keys, in pairs, to the end of KEYS.
local function knownEnd(firstSeq, from)
  local known = firstSeq
  for i = from, #KEYS, 2 do
    known = math.max(known, tonumber(redis.call('HGET', KEYS[i], 'frontier') or '0'))
    local p = redis.call('HGETALL', KEYS[i + 1])
    for j = 1, #p, 2 do
      known = math.max(known, tonumber(p[j]) + 1)
      local o = cjson.decode(p[j + 1])
      if o.skipTo then known = math.max(known, o.skipTo) end
    end
  end
  return known
end
