-- Removes one worker from the cluster's pool (worker-pool-store.ts `removeWorker`).
-- KEYS[1] workers <p>:ai:workers; KEYS[2] expiry <p>:ai:expiry; KEYS[3] health <p>:ai:health
-- ARGV[1] workerID
-- Reply: 1 when it was registered, 0 when not.
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
