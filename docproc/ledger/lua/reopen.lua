-- reopen: make a document recorded as ended, whose end never reached the outbox (no outdir),
-- queued and active again, out of the terminal counts. Earlier versions failed documents so
-- when the outbox could not be written.
--
-- KEYS: [1] <prefix>doc:<key>
-- ARGV: [1] prefix, [2] key, [3] now (seconds)
-- Reads:  KEYS[1] (status, outdir, received_ts)
-- Writes: KEYS[1] (status, stage, worker, stages, updated_ts; error_type, finished_ts and
--         outdir deleted), <prefix>counts, <prefix>failed, <prefix>active
-- Returns: 1 when reopened, else 0.
local prefix, key, now = ARGV[1], ARGV[2], ARGV[3]
local fields = redis.call('HMGET', KEYS[1], 'status', 'outdir', 'received_ts')
local status, outdir = fields[1], fields[2]
if not (status == 'done' or status == 'failed' or status == 'duplicate') then return 0 end
if outdir and outdir ~= '' then return 0 end
redis.call('HINCRBY', prefix .. 'counts', status, -1)
redis.call('ZREM', prefix .. 'failed', key)
redis.call('HSET', KEYS[1], 'status', 'queued', 'stage', 'queued', 'worker', '',
           'stages', '{}', 'updated_ts', now)
redis.call('HDEL', KEYS[1], 'error_type', 'finished_ts', 'outdir')
redis.call('ZADD', prefix .. 'active', tonumber(fields[3]) or tonumber(now), key)
return 1
