-- forget: remove a finished document's records. Its content and sequence keys go only when
-- nothing needs them any more.
--
-- KEYS: none (every key is built from ARGV[1])
-- ARGV: [1] prefix, [2] key
-- Reads:  <prefix>doc:<key> (status, token, sha256, id), <prefix>active,
--         <prefix>token:<token>, <prefix>sha:<sha256>, <prefix>seq:<id>,
--         <prefix>doc:<id>[-<n>] (whether each receipt of the content id still exists)
-- Writes: <prefix>doc:<key> (deleted), <prefix>docs, <prefix>failed, <prefix>suspects,
--         <prefix>counts, and deletes <prefix>token:<token> and <prefix>sha:<sha256> when
--         they name this document, <prefix>seq:<id> when no receipt of it is left
-- Returns: the status of the removed document, or '' when it must stay (unfinished or
--          active) or is gone.
local prefix, key = ARGV[1], ARGV[2]
local doc = prefix .. 'doc:' .. key
local fields = redis.call('HMGET', doc, 'status', 'token', 'sha256', 'id')
local status, token, sha, id = fields[1], fields[2], fields[3], fields[4]
if not status then
  redis.call('ZREM', prefix .. 'docs', key)
  return ''
end
if status ~= 'done' and status ~= 'failed' and status ~= 'duplicate' and status ~= 'retried' then
  return ''
end
if redis.call('ZSCORE', prefix .. 'active', key) then return '' end
redis.call('DEL', doc)
redis.call('ZREM', prefix .. 'docs', key)
redis.call('ZREM', prefix .. 'failed', key)
redis.call('HDEL', prefix .. 'suspects', key)
redis.call('HINCRBY', prefix .. 'counts', status, -1)
if token and redis.call('GET', prefix .. 'token:' .. token) == key then
  redis.call('DEL', prefix .. 'token:' .. token)
end
if sha and redis.call('GET', prefix .. 'sha:' .. sha) == key then
  redis.call('DEL', prefix .. 'sha:' .. sha)
end
if id then
  local seq = tonumber(redis.call('GET', prefix .. 'seq:' .. id) or '0')
  local used = false
  for n = 1, seq do
    local other = id
    if n > 1 then other = id .. '-' .. n end
    if redis.call('EXISTS', prefix .. 'doc:' .. other) == 1 then used = true; break end
  end
  if not used then redis.call('DEL', prefix .. 'seq:' .. id) end
end
return status
