-- record: record a claimed file once (by its spool token), under a key from its content id,
-- and name the original it repeats, if any.
--
-- KEYS: none (every key is built from ARGV[1])
-- ARGV: [1] prefix, [2] content id (doc_id), [3] sha256, [4] spool token, [5] now (seconds),
--       [6] JSON object of the record's fields
-- Reads:  <prefix>token:<token>, <prefix>sha:<sha256>, <prefix>doc:<original> (status)
-- Writes: <prefix>seq:<doc_id> (INCR), <prefix>sha:<sha256> (when not a duplicate),
--         <prefix>doc:<key>, <prefix>docs, <prefix>active, <prefix>token:<token>
-- Returns: {key, duplicate_of or ''}; the same pair again when the token was recorded before.
local prefix, doc_id, sha, token, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local existing = redis.call('GET', prefix .. 'token:' .. token)
if existing then
  return {existing, redis.call('HGET', prefix .. 'doc:' .. existing, 'duplicate_of') or ''}
end
local seq = redis.call('INCR', prefix .. 'seq:' .. doc_id)
local key = doc_id
if seq > 1 then key = doc_id .. '-' .. seq end
local content = prefix .. 'sha:' .. sha
local original = redis.call('GET', content)
local duplicate_of = ''
if original then
  local status = redis.call('HGET', prefix .. 'doc:' .. original, 'status')
  if status and status ~= 'failed' then duplicate_of = original end
end
if duplicate_of == '' then redis.call('SET', content, key) end
local fields = cjson.decode(ARGV[6])
local doc = prefix .. 'doc:' .. key
redis.call('HSET', doc, 'key', key, 'duplicate_of', duplicate_of, 'received_ts', now)
for name, value in pairs(fields) do redis.call('HSET', doc, name, tostring(value)) end
redis.call('ZADD', prefix .. 'docs', now, key)
redis.call('ZADD', prefix .. 'active', now, key)
redis.call('SET', prefix .. 'token:' .. token, key)
return {key, duplicate_of}
