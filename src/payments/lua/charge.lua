-- Ledger (src/payments/ledger-store.ts): a direct charge without a hold, once per entry ID, only
-- when the balance covers it.
-- KEYS[1] entry   <p>:pay:entry:<entryID>      HASH
-- KEYS[2] hold    <p>:pay:hold:<entryID>       HASH (a live hold with this ID refuses the charge)
-- ARGV[1] key prefix <p>:pay (the account and ledger keys are built from it: one Redis, not a cluster);
-- ARGV[2] entryID; ARGV[3] accountID; ARGV[4] amount (integer string); ARGV[5] units (integer string);
-- ARGV[6] price rule; ARGV[7] kind; ARGV[8] ref; ARGV[9] nowMs;
-- ARGV[10] ledger member (`<15-digit ms>:<entryID>`);
-- ARGV[11] manifestID, ARGV[12] seq, ARGV[13] pipeline, ARGV[14] modelID ('' = absent).
-- Reply: {status, balance, <entry>}: {'ok', '0', <entry>}; {'replayed', '0', <entry>} when the entry
-- exists (nothing changes), where <entry> is the entry hash as HGETALL returns it (field, value,
-- ...), so the caller needs no second round trip to read it; {'insufficient', balance};
-- {'no-account', '0'}; {'conflict', '0'} when a live hold has this ID.
-- Uses debit() from ledger-functions.lua.
local entry, hold, P, accountID = KEYS[1], KEYS[2], ARGV[1], ARGV[3]
if redis.call('EXISTS', entry) == 1 then return {'replayed', '0', redis.call('HGETALL', entry)} end
if redis.call('HGET', hold, 'state') == 'held' then return {'conflict', '0'} end
local debited, balance = debit(P .. ':acct:' .. accountID, ARGV[4])
if debited ~= 'ok' then return {debited, balance} end
redis.call('HSET', entry, 'id', ARGV[2], 'accountID', accountID, 'kind', ARGV[7], 'amount', ARGV[4], 'units', ARGV[5],
  'rule', ARGV[6], 'ref', ARGV[8], 'createdAtMs', ARGV[9])
if ARGV[11] ~= '' then redis.call('HSET', entry, 'manifestID', ARGV[11]) end
if ARGV[12] ~= '' then redis.call('HSET', entry, 'seq', ARGV[12]) end
if ARGV[13] ~= '' then redis.call('HSET', entry, 'pipeline', ARGV[13]) end
if ARGV[14] ~= '' then redis.call('HSET', entry, 'modelID', ARGV[14]) end
redis.call('ZADD', P .. ':ledger:' .. accountID, 0, ARGV[10])
return {'ok', '0', redis.call('HGETALL', entry)}
