-- Ledger (src/payments/ledger-store.ts): turns a live hold into the ledger entry for the actual
-- charge (entry ID = hold ID). Refunds hold - amount; when the amount exceeds the hold, takes the
-- extra only as far as the balance goes and records requestedAmount and shortfall.
-- KEYS[1] hold    <p>:pay:hold:<holdID>        HASH (deleted once settled)
-- KEYS[2] entry   <p>:pay:entry:<holdID>       HASH
-- KEYS[3] holds   <p>:pay:holds                ZSET live hold IDs by expiresAtMs
-- ARGV[1] key prefix <p>:pay (the account and ledger keys are built from it: one Redis, not a cluster);
-- ARGV[2] holdID; ARGV[3] amount (integer string); ARGV[4] units (integer string); ARGV[5] price rule;
-- ARGV[6] kind; ARGV[7] ref; ARGV[8] nowMs; ARGV[9] ledger member (`<15-digit ms>:<holdID>`);
-- ARGV[10] manifestID, ARGV[11] seq, ARGV[12] pipeline, ARGV[13] modelID ('' = absent).
-- Reply: {'settled', <entry>}; {'replayed', <entry>} when the entry exists (nothing changes), where
-- <entry> is the entry hash as HGETALL returns it (field, value, ...), so the caller needs no
-- second round trip to read it; {'unknown-hold'}; {'released'} or {'expired'} for a hold no
-- longer live (nothing charged).
-- The hold is read with one HMGET and the entry written with one HSET; the reply's entry is the
-- list of what was written (a new hash holds exactly that), not a HGETALL of it; the balance
-- is read only when the amount exceeds the hold. Fewer calls per settle: it runs once per
-- metered AI request and per transcoded segment.
-- Uses int() from ledger-functions.lua.
local hold, entry, holds, P, holdID = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]
if redis.call('EXISTS', entry) == 1 then return {'replayed', redis.call('HGETALL', entry)} end
local h = redis.call('HMGET', hold, 'state', 'accountID', 'amount')
local state = h[1]
if not state then return {'unknown-hold'} end
if state ~= 'held' then return {state} end
local accountID = h[2]
local acct = P .. ':acct:' .. accountID
local held = tonumber(h[3])
local wanted = tonumber(ARGV[3])
local charged, shortfall = wanted, 0
if wanted > held then
  local balance = tonumber(redis.call('HGET', acct, 'balance') or '0')
  local extra = wanted - held
  local take = math.min(extra, math.max(balance, 0))
  charged = held + take
  shortfall = extra - take
end
local delta = held - charged
if delta ~= 0 then redis.call('HINCRBY', acct, 'balance', int(delta)) end
local fields = {'id', holdID, 'accountID', accountID, 'kind', ARGV[6], 'amount', int(charged), 'units', ARGV[4],
  'rule', ARGV[5], 'ref', ARGV[7], 'createdAtMs', ARGV[8]}
local function add(field, value) fields[#fields + 1] = field; fields[#fields + 1] = value end
if shortfall > 0 then add('requestedAmount', ARGV[3]); add('shortfall', int(shortfall)) end
if ARGV[10] ~= '' then add('manifestID', ARGV[10]) end
if ARGV[11] ~= '' then add('seq', ARGV[11]) end
if ARGV[12] ~= '' then add('pipeline', ARGV[12]) end
if ARGV[13] ~= '' then add('modelID', ARGV[13]) end
redis.call('HSET', entry, unpack(fields))
redis.call('ZADD', P .. ':ledger:' .. accountID, 0, ARGV[9])
redis.call('ZREM', holds, holdID)
redis.call('DEL', hold)
return {'settled', fields}
