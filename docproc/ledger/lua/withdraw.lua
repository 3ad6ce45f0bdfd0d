-- withdraw: remove an unfinished document's records, to record its file again under a new
-- key (its content changed after the claim).
--
-- KEYS: none (every key is built from ARGV[1])
-- ARGV: [1] prefix, [2] key
-- Reads:  <prefix>doc:<key> (status, token, sha256), <prefix>token:<token>,
--         <prefix>sha:<sha256>
-- Writes: <prefix>doc:<key> (deleted), <prefix>docs, <prefix>active, <prefix>suspects, and
--         deletes <prefix>token:<token> and <prefix>sha:<sha256> when they name this document
-- Returns: 1 when removed, 0 when the document had finished.
local prefix, key = ARGV[1], ARGV[2]
local doc = prefix .. 'doc:' .. key
local fields = redis.call('HMGET', doc, 'status', 'token', 'sha256')
local status, token, sha = fields[1], fields[2], fields[3]
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 0
end
redis.call('DEL', doc)
redis.call('ZREM', prefix .. 'docs', key)
redis.call('ZREM', prefix .. 'active', key)
redis.call('HDEL', prefix .. 'suspects', key)
if token and redis.call('GET', prefix .. 'token:' .. token) == key then
  redis.call('DEL', prefix .. 'token:' .. token)
end
if sha and redis.call('GET', prefix .. 'sha:' .. sha) == key then
  redis.call('DEL', prefix .. 'sha:' .. sha)
end
return 1
