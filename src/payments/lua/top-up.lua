-- Ledger (src/payments/ledger-store.ts): adds credits once per idempotency key.
-- KEYS[1] acct    <p>:pay:acct:<accountID>     HASH
-- KEYS[2] entry   <p>:pay:entry:<entryID>      HASH (entryID `topup:<accountID>:<idempotencyKey>`)
-- KEYS[3] ledger  <p>:pay:ledger:<accountID>   ZSET
-- ARGV[1] entryID; ARGV[2] accountID; ARGV[3] credits (integer string); ARGV[4] nowMs;
-- ARGV[5] ledger member (`<15-digit ms>:<entryID>`); ARGV[6] idempotencyKey (the entry's ref);
-- ARGV[7] largest balance allowed (2^53 - 1).
-- Reply: {status, balance}: {'ok', new balance}; {'replayed', current balance} when the entry
-- exists (nothing changes); {'no-account', '0'}; {'overflow', balance} when the balance would
-- pass ARGV[7] (nothing changes).
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'replayed', redis.call('HGET', KEYS[1], 'balance') or '0'}
end
local balance = redis.call('HGET', KEYS[1], 'balance')
if not balance then return {'no-account', '0'} end
if tonumber(balance) + tonumber(ARGV[3]) > tonumber(ARGV[7]) then return {'overflow', balance} end
redis.call('HINCRBY', KEYS[1], 'balance', ARGV[3])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'accountID', ARGV[2], 'kind', 'topup', 'amount', ARGV[3], 'units', '0',
  'rule', 'topup', 'ref', ARGV[6], 'createdAtMs', ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[5])
return {'ok', redis.call('HGET', KEYS[1], 'balance')}
