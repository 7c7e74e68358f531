-- Ledger (src/payments/ledger-store.ts): the expiry sweep. Releases up to `batch` holds whose
-- expiresAtMs <= nowMs (state `expired`, kept retainMs so a late settle is refused) and drops
-- IDs of holds no longer live from the index.
-- KEYS[1] holds   <p>:pay:holds                ZSET live hold IDs by expiresAtMs
-- ARGV[1] key prefix <p>:pay (hold and account keys are built from it: one Redis, not a cluster);
-- ARGV[2] nowMs; ARGV[3] retainMs; ARGV[4] batch (most holds handled per call).
-- Reply: the number of hold IDs handled (a reply equal to batch means more may be due).
-- Uses releaseHold() from ledger-functions.lua.
local holds, P = KEYS[1], ARGV[1]
local due = redis.call('ZRANGE', holds, '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
for _, holdID in ipairs(due) do
  local hold = P .. ':hold:' .. holdID
  if redis.call('HGET', hold, 'state') == 'held' then
    releaseHold(P, hold, holds, holdID, 'expired', ARGV[2], ARGV[3])
  else
    redis.call('ZREM', holds, holdID)
  end
end
return #due
