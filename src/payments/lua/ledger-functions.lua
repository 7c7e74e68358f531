-- Ledger (src/payments/ledger-store.ts): local functions shared by its scripts. Redis scripts
-- cannot load one another, so ledger-store.ts puts this file in front of each script that
-- names it in its header (src/redis/scripts.ts `luaScript` libraries). Defines functions only.

-- A Lua number (an exact integer below 2^53) as an integer string: never an exponent.
local function int(n) if n == 0 then return '0' end return string.format('%.0f', n) end

-- Takes `amount` (an integer string) from the balance of account hash `acct`, only when the
-- balance covers it. Returns 'ok', 'no-account' (nothing changes) or 'insufficient' (nothing
-- changes; the balance read is the second value, '0' for no account).
local function debit(acct, amount)
  local balance = redis.call('HGET', acct, 'balance')
  if not balance then return 'no-account', '0' end
  local n = tonumber(amount)
  if tonumber(balance) < n then return 'insufficient', balance end
  if n > 0 then redis.call('HINCRBY', acct, 'balance', int(-n)) end
  return 'ok', balance
end

-- Releases one live hold with the given final state (`released` or `expired`): gives its
-- amount back to the account <P>:acct:<accountID>, keeps the hold retainMs ms (so a late
-- settle is refused) and drops it from the live-hold index. Returns the amount (a string).
local function releaseHold(P, hold, holds, holdID, finalState, nowMs, retainMs)
  local accountID = redis.call('HGET', hold, 'accountID')
  local amount = redis.call('HGET', hold, 'amount')
  if amount ~= '0' then redis.call('HINCRBY', P .. ':acct:' .. accountID, 'balance', amount) end
  redis.call('HSET', hold, 'state', finalState, 'resolvedAtMs', nowMs)
  redis.call('PEXPIRE', hold, retainMs)
  redis.call('ZREM', holds, holdID)
  return amount
end
