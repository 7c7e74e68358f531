-- Ledger (src/payments/ledger-store.ts): gives a live hold back to the balance in full and keeps
-- the hold, state `released`, for retainMs so a late settle is refused.
-- KEYS[1] hold    <p>:pay:hold:<holdID>        HASH
-- KEYS[2] entry   <p>:pay:entry:<holdID>       HASH (exists once the hold was settled)
-- KEYS[3] holds   <p>:pay:holds                ZSET live hold IDs by expiresAtMs
-- ARGV[1] key prefix <p>:pay (the account key is built from it: one Redis, not a cluster);
-- ARGV[2] holdID; ARGV[3] nowMs; ARGV[4] retainMs.
-- Reply: {status, amount}: {'done', amount returned}; {'settled', '0'}; {'unknown-hold', '0'};
-- {'released', '0'} or {'expired', '0'} for a hold already resolved (nothing changes).
-- Uses releaseHold() from ledger-functions.lua.
local hold, entry, holds = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', entry) == 1 then return {'settled', '0'} end
local state = redis.call('HGET', hold, 'state')
if not state then return {'unknown-hold', '0'} end
if state ~= 'held' then return {state, '0'} end
return {'done', releaseHold(ARGV[1], hold, holds, ARGV[2], 'released', ARGV[3], ARGV[4])}
