-- release_lock: release a lock if the owner holds it.
--
-- KEYS: [1] <prefix>lock:<name>
-- ARGV: [1] owner
-- Reads:  KEYS[1]
-- Writes: KEYS[1] (deleted when it names the owner)
-- Returns: 1 when released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
