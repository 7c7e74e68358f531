-- Restream outputs (src/outputs/outputs-store.ts `add`): adds one output to a stream's desired
-- outputs unless the stream has `max` already, in one step, so two gateways adding at once
-- never exceed `outputs.maxPerStream` together.
-- KEYS[1] outputs  <p>:out:list:<m>   HASH output ID -> spec JSON
-- ARGV[1] output ID; ARGV[2] spec JSON; ARGV[3] max outputs of the stream.
-- Reply: 1 added; 0 refused (the stream has `max` outputs already).
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
