-- hold_lock: take a lock for an owner, or extend it when the owner holds it already.
--
-- KEYS: [1] <prefix>lock:<name>
-- ARGV: [1] owner, [2] milliseconds the lock lasts
-- Reads:  KEYS[1]
-- Writes: KEYS[1] (the owner, expiring)
-- Returns: 1 when the owner holds the lock, 0 when another does.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
