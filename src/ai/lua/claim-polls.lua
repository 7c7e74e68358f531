-- Elects, per worker, the one gateway that polls its health this interval
-- (worker-pool-store.ts `claimPolls`): a lock per worker taken with SET NX PX.
-- This script builds each lock key `<ARGV[1]><workerID>` from the prefix it is given.
-- ARGV[1] lock key prefix `<p>:ai:poll:`; ARGV[2] hold ms; ARGV[3] this gateway's lock value; ARGV[4..] workerIDs
-- Reply: the workerIDs this gateway won (it polls them now).
local won = {}
for i = 4, #ARGV do
  if redis.call('SET', ARGV[1] .. ARGV[i], ARGV[3], 'NX', 'PX', ARGV[2]) then won[#won + 1] = ARGV[i] end
end
return won
