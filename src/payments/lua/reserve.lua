-- Ledger (src/payments/ledger-store.ts): holds credits for work about to run, only when the
-- balance covers them.
-- KEYS[1] hold    <p>:pay:hold:<holdID>        HASH
-- KEYS[2] holds   <p>:pay:holds                ZSET live hold IDs by expiresAtMs
-- ARGV[1] key prefix <p>:pay (the account and entry keys are built from it: one Redis, not a cluster);
-- ARGV[2] holdID; ARGV[3] accountID; ARGV[4] amount (integer string); ARGV[5] kind; ARGV[6] ref;
-- ARGV[7] nowMs; ARGV[8] expiresAtMs.
-- Reply: {status, balance}: {'ok', '0'} when held, or already held for this account, or already
-- settled (nothing more taken); {'insufficient', balance}; {'no-account', '0'};
-- {'conflict', '0'} when the hold is live for another account.
-- Uses debit() from ledger-functions.lua.
local hold, holds, P, holdID, accountID = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local h = redis.call('HMGET', hold, 'state', 'accountID')
local state = h[1]
if state == 'held' then
  if h[2] ~= accountID then return {'conflict', '0'} end
  return {'ok', '0'}
end
if redis.call('EXISTS', P .. ':entry:' .. holdID) == 1 then return {'ok', '0'} end
local debited, balance = debit(P .. ':acct:' .. accountID, ARGV[4])
if debited ~= 'ok' then return {debited, balance} end
-- A released or expired hold of an earlier attempt is replaced, not merged into.
if state then redis.call('DEL', hold) end
redis.call('HSET', hold, 'state', 'held', 'accountID', accountID, 'amount', ARGV[4], 'kind', ARGV[5], 'ref', ARGV[6],
  'createdAtMs', ARGV[7], 'expiresAtMs', ARGV[8])
redis.call('ZADD', holds, ARGV[8], holdID)
return {'ok', '0'}
