-- unretry: undo retry.lua when the document could not be sent again after all.
--
-- KEYS: [1] <prefix>doc:<key>
-- ARGV: [1] prefix, [2] key
-- Reads:  KEYS[1] (status, received_ts, sha256)
-- Writes: KEYS[1] (status, stage; retried_ts deleted), <prefix>counts, <prefix>failed,
--         <prefix>sha:<sha256> (only when no other document holds it)
-- Returns: 1 when undone, 0 when the document was not retried.
if redis.call('HGET', KEYS[1], 'status') ~= 'retried' then return 0 end
local prefix, key = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', 'failed', 'stage', 'failed')
redis.call('HDEL', KEYS[1], 'retried_ts')
redis.call('HINCRBY', prefix .. 'counts', 'failed', 1)
redis.call('HINCRBY', prefix .. 'counts', 'retried', -1)
local received = tonumber(redis.call('HGET', KEYS[1], 'received_ts') or '0') or 0
redis.call('ZADD', prefix .. 'failed', received, key)
local sha = redis.call('HGET', KEYS[1], 'sha256')
if sha then redis.call('SET', prefix .. 'sha:' .. sha, key, 'NX') end
return 1
