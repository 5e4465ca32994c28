-- GCRA with reservation: take the next free slot of a rate limit.
-- KEYS[1] the limit's theoretical arrival time   ARGV[1] interval   ARGV[2] burst
-- Returns the seconds until the reserved slot (0 = now), as a string.
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local run_at = math.max(now, tat - (burst - 1) * interval)
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'PX',
  math.ceil((next_tat - now) * 1000) + 1000)
return string.format('%.6f', run_at - now)
