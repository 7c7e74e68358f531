-- Ledger (src/payments/ledger-store.ts): creates an account with its initial credits.
-- KEYS[1] acct    <p>:pay:acct:<accountID>     HASH
-- KEYS[2] accts   <p>:pay:accts                ZSET account IDs by createdAtMs
-- KEYS[3] entry   <p>:pay:entry:<entryID>      HASH the initial top-up entry
-- KEYS[4] ledger  <p>:pay:ledger:<accountID>   ZSET the account's entries
-- ARGV[1] accountID; ARGV[2] name; ARGV[3] nowMs; ARGV[4] credits (integer string);
-- ARGV[5] entryID (`topup:<accountID>:initial`); ARGV[6] ledger member (`<15-digit ms>:<entryID>`).
-- Reply: 1 when created; 0 when the account exists (nothing changes). With credits '0' no entry is written.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'balance', ARGV[4], 'createdAtMs', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if ARGV[4] ~= '0' then
  redis.call('HSET', KEYS[3], 'id', ARGV[5], 'accountID', ARGV[1], 'kind', 'topup', 'amount', ARGV[4], 'units', '0',
    'rule', 'topup', 'ref', 'initial', 'createdAtMs', ARGV[3])
  redis.call('ZADD', KEYS[4], 0, ARGV[6])
end
return 1
