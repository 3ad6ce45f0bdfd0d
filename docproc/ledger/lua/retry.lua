-- retry: mark a failed document retried, once. It leaves the failed count, and its content
-- no longer points to it, so that the copy sent again is processed, not its duplicate.
--
-- KEYS: [1] <prefix>doc:<key>
-- ARGV: [1] prefix, [2] key, [3] now (seconds)
-- Reads:  KEYS[1] (status, sha256), <prefix>sha:<sha256>
-- Writes: KEYS[1] (status, stage, retried_ts, updated_ts), <prefix>counts, <prefix>failed,
--         <prefix>sha:<sha256> (deleted when it names this document)
-- Returns: 'retried', or the status that prevented it ('' when there is no record).
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'failed' then return status or '' end
local prefix, key, now = ARGV[1], ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], 'status', 'retried', 'stage', 'retried', 'retried_ts', now,
           'updated_ts', now)
redis.call('HINCRBY', prefix .. 'counts', 'failed', -1)
redis.call('HINCRBY', prefix .. 'counts', 'retried', 1)
redis.call('ZREM', prefix .. 'failed', key)
local sha = redis.call('HGET', KEYS[1], 'sha256')
if sha then
  local content = prefix .. 'sha:' .. sha
  if redis.call('GET', content) == key then redis.call('DEL', content) end
end
return 'retried'
