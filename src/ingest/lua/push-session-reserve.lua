-- Push sessions (src/ingest/push-session-store.ts `reserve`): reserves the opening of the
-- push session of one stream for one gateway, so two first pushes at two gateways open one
-- session. The reservation lives `leaseMs` (its opener may die while opening).
-- KEYS[1] session  <p>:pushsess:<id>  HASH (see the store's header)
-- ARGV[1] owner (the reserving push's token); ARGV[2] leaseMs.
-- Reply: 'reserved' when the caller opens the session; else the state that holds it ('opening' or 'live').
local state = redis.call('HGET', KEYS[1], 'state')
if state then return state end
redis.call('HSET', KEYS[1], 'state', 'opening', 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'reserved'
