-- finish: record a document's end state once. Terminal counts, metrics counters and
-- histograms stay exact whatever is redelivered, and add up across every worker and machine.
--
-- KEYS: [1] <prefix>doc:<key>
-- ARGV: [1] prefix, [2] key, [3] status, [4] outbox folder, [5] error type or '',
--       [6] now (seconds), [7] JSON of the stage times or '', [8] kind or '',
--       [9] seconds a minute bucket lives, [10] JSON list of the histogram bucket bounds
-- Reads:  KEYS[1] (status, received_ts)
-- Writes: KEYS[1], <prefix>active, <prefix>suspects, <prefix>counts, <prefix>failed,
--         <prefix>m:finished, <prefix>m:minute:<minute> (with its expiry), <prefix>m:seconds
-- Returns: 1 when recorded, 0 when the document had already finished.
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 0
end
local prefix, key = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'stage', ARGV[3], 'outdir', ARGV[4],
           'error_type', ARGV[5], 'finished_ts', ARGV[6], 'updated_ts', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'stages', ARGV[7]) end
redis.call('ZREM', prefix .. 'active', key)
redis.call('HDEL', prefix .. 'suspects', key)
redis.call('HINCRBY', prefix .. 'counts', ARGV[3], 1)
local received = tonumber(redis.call('HGET', KEYS[1], 'received_ts') or '')
if ARGV[3] == 'failed' then redis.call('ZADD', prefix .. 'failed', received or 0, key) end
local now = tonumber(ARGV[6])
local kind = ARGV[8]
if kind == nil or kind == '' then kind = 'unknown' end
if ARGV[5] ~= '' then kind = kind .. '|' .. ARGV[5] end
redis.call('HINCRBY', prefix .. 'm:finished', ARGV[3] .. '|' .. kind, 1)
local minute = prefix .. 'm:minute:' .. string.format('%d', math.floor(now / 60))
redis.call('HINCRBY', minute, ARGV[3], 1)
redis.call('EXPIRE', minute, ARGV[9])
local bounds = cjson.decode(ARGV[10])
local histograms = prefix .. 'm:seconds'
local function observe(name, seconds)
  local slot = #bounds + 1
  for i = 1, #bounds do
    if seconds <= bounds[i] then slot = i; break end
  end
  redis.call('HINCRBY', histograms, name .. ':' .. slot, 1)
  redis.call('HINCRBYFLOAT', histograms, name .. ':sum', string.format('%.6f', seconds))
  redis.call('HINCRBY', histograms, name .. ':count', 1)
end
if received then observe('document', math.max(0, now - received)) end
if ARGV[7] ~= '' then
  local ok, stages = pcall(cjson.decode, ARGV[7])
  if ok and type(stages) == 'table' then
    for stage, times in pairs(stages) do
      if type(times) == 'table' and tonumber(times.started) and tonumber(times.ended) then
        local seconds = math.max(0, tonumber(times.ended) - tonumber(times.started))
        observe('stage:' .. stage, seconds)
        redis.call('HINCRBYFLOAT', minute, stage .. ':sum', string.format('%.6f', seconds))
        redis.call('HINCRBY', minute, stage .. ':n', 1)
        if stage == 'detect' and received then
          observe('wait', math.max(0, tonumber(times.started) - received))
        end
      end
    end
  end
end
return 1
