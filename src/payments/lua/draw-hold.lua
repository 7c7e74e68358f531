-- Ledger (src/payments/ledger-store.ts): one charge of open-ended work that keeps a standing hold
-- (a live video-to-video session's interval), once per entry ID. The charge is taken from the hold
-- and the balance together, never past what both hold (the entry then records requestedAmount and
-- shortfall), and the hold is then filled back up to its target from what the balance has left, so
-- the work keeps its reserve while the account can pay and runs the reserve down when it cannot.
-- Each draw moves the hold's expiry to expiresAtMs (a gateway that dies leaves a hold the expiry
-- sweep returns). When the hold is no longer live (released, expired, never made, or held for another
-- account), the charge is taken from the balance alone and no hold is touched.
-- KEYS[1] entry   <p>:pay:entry:<entryID>      HASH
-- KEYS[2] hold    <p>:pay:hold:<holdID>        HASH
-- KEYS[3] holds   <p>:pay:holds                ZSET live hold IDs by expiresAtMs
-- ARGV[1] key prefix <p>:pay (the account and ledger keys are built from it: one Redis, not a cluster);
-- ARGV[2] entryID; ARGV[3] holdID; ARGV[4] accountID; ARGV[5] amount (integer string);
-- ARGV[6] units (integer string); ARGV[7] price rule; ARGV[8] kind; ARGV[9] ref; ARGV[10] nowMs;
-- ARGV[11] ledger member (`<15-digit ms>:<entryID>`); ARGV[12] the hold's target (integer string);
-- ARGV[13] the hold's new expiresAtMs;
-- ARGV[14] manifestID, ARGV[15] seq, ARGV[16] pipeline, ARGV[17] modelID ('' = absent).
-- Reply: {'charged', <entry>}; {'replayed', <entry>} when the entry exists (nothing changes), where
-- <entry> is the entry hash as HGETALL returns it (field, value, ...); {'no-account'}.
-- Uses int() from ledger-functions.lua.
local entry, hold, holds, P, entryID, holdID, accountID = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', entry) == 1 then return {'replayed', redis.call('HGETALL', entry)} end
local acct = P .. ':acct:' .. accountID
local balance = redis.call('HGET', acct, 'balance')
if not balance then return {'no-account'} end
balance = tonumber(balance)
local h = redis.call('HMGET', hold, 'state', 'accountID', 'amount')
local live = h[1] == 'held' and h[2] == accountID
local held = 0
if live then held = tonumber(h[3]) end
local wanted = tonumber(ARGV[5])
local total = held + math.max(balance, 0)
local charged = math.min(wanted, total)
local shortfall = wanted - charged
local remaining = total - charged
local newHeld = 0
if live then
  newHeld = math.min(tonumber(ARGV[12]), remaining)
  redis.call('HSET', hold, 'amount', int(newHeld), 'expiresAtMs', ARGV[13])
  redis.call('ZADD', holds, ARGV[13], holdID)
end
local newBalance = remaining - newHeld
if newBalance ~= math.max(balance, 0) then redis.call('HINCRBY', acct, 'balance', int(newBalance - math.max(balance, 0))) end
local fields = {'id', entryID, 'accountID', accountID, 'kind', ARGV[8], 'amount', int(charged), 'units', ARGV[6],
  'rule', ARGV[7], 'ref', ARGV[9], 'createdAtMs', ARGV[10]}
local function add(field, value) fields[#fields + 1] = field; fields[#fields + 1] = value end
if shortfall > 0 then add('requestedAmount', ARGV[5]); add('shortfall', int(shortfall)) end
if ARGV[14] ~= '' then add('manifestID', ARGV[14]) end
if ARGV[15] ~= '' then add('seq', ARGV[15]) end
if ARGV[16] ~= '' then add('pipeline', ARGV[16]) end
if ARGV[17] ~= '' then add('modelID', ARGV[17]) end
redis.call('HSET', entry, unpack(fields))
redis.call('ZADD', P .. ':ledger:' .. accountID, 0, ARGV[11])
return {'charged', fields}
