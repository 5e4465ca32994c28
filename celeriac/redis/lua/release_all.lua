-- Give back everything one consumer holds in this queue (its process died).
-- A message that has now been delivered max_deliveries times is dead-lettered:
-- it may be what killed the process.
-- KEYS[1] the queue's key base   ARGV[1] consumer   ARGV[2] max deliveries
-- ARGV[3] wake channel
local base, maxd, channel = KEYS[1], tonumber(ARGV[2]), ARGV[3]
local held = base .. ':held:' .. ARGV[1]
local all = redis.call('HGETALL', held)
local now = clock()
local back = {}
for i = 1, #all, 2 do
  local e = all[i + 1]
  local _, d = header(e)
  if d >= maxd then
    bury(base, e, 'its consumer died after ' .. d .. ' deliveries (max_deliveries=' .. maxd
      .. ')', now)
  else
    back[#back + 1] = e
  end
end
redis.call('DEL', held)
redis.call('ZREM', base .. ':holders', ARGV[1])
put_front(base, back)
if #back > 0 then
  wake(base, channel)
end
return #all / 2
