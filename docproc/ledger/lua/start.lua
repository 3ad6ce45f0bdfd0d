-- start: mark a document running in a stage unless it is finished.
--
-- KEYS: [1] <prefix>doc:<key>
-- ARGV: [1] stage, [2] worker, [3] JSON of the stage times so far ('{}': none), [4] now
-- Reads:  KEYS[1] (status)
-- Writes: KEYS[1] (status, stage, worker, updated_ts, stages)
-- Returns: 1 when the document is finished (nothing written), else 0.
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 1
end
redis.call('HSET', KEYS[1], 'status', 'running', 'stage', ARGV[1], 'worker', ARGV[2],
           'updated_ts', ARGV[4])
if ARGV[3] ~= '{}' then redis.call('HSET', KEYS[1], 'stages', ARGV[3]) end
return 0
