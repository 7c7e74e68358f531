-- Live feed retention (src/transcode/live-feed-store.ts `LiveFeedWriter`), run by the gateway at
-- the first chunk of every seq: trims the feed without ever dropping what the session still
-- needs, unless its byte cap says so, and renews the feed's TTL.
-- KEYS[1] feed    <p>:transcode:feed:<m>:<s>   STREAM, entry IDs <seq>-<n>
-- KEYS[2] session <p>:transcode:live:<m>:<s>   HASH of the live session (its `next`: the first seq not yet recorded)
-- ARGV[1] countTrimTo: the first seq to keep when the session record is gone (nobody will read: the old count cap)
-- ARGV[2] bytesTrimTo: the first seq to keep so the feed stays within its byte cap (0: no need)
-- ARGV[3] ttlMs of the feed key
-- While the session record exists, seqs below `next` go (recorded: a takeover resumes at `next`),
-- and seqs at or above it only when bytesTrimTo is above `next` (the cap overrides: those seqs
-- are lost and the caller says so loudly). Without a record, seqs below countTrimTo go.
-- Reply: {next (-1 without a record), trimmedTo (the first seq kept, 0: nothing trimmed)}.
local feed, session = KEYS[1], KEYS[2]
local countTo, bytesTo = tonumber(ARGV[1]), tonumber(ARGV[2])
local nextSeq = -1
local to
if redis.call('EXISTS', session) == 1 then
  nextSeq = tonumber(redis.call('HGET', session, 'next') or '0')
  to = math.max(nextSeq, bytesTo)
else
  to = math.max(countTo, bytesTo)
end
if to > 0 then redis.call('XTRIM', feed, 'MINID', to .. '-0') else to = 0 end
redis.call('PEXPIRE', feed, ARGV[3])
return {nextSeq, to}
