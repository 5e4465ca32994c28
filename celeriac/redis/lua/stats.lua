-- How much one queue holds.
-- KEYS[1] the queue's key base
-- Returns {now in us, waiting p0..p9 (10 numbers), delayed, in flight, dead,
-- order of the oldest waiting message ('' = none)}
local base = KEYS[1]
local _, now_us = clock()
local out = {fmt(now_us)}
local oldest = nil
for p = 0, 9 do
  local key = base .. ':p' .. p
  out[#out + 1] = redis.call('LLEN', key)
  local e = redis.call('LINDEX', key, 0)
  if e then
    local o = order_of(e)
    if o and (not oldest or o < oldest) then
      oldest = o
    end
  end
end
out[#out + 1] = redis.call('ZCARD', base .. ':delayed')
out[#out + 1] = held_count(base)
out[#out + 1] = redis.call('LLEN', base .. ':dead')
out[#out + 1] = oldest and fmt(oldest) or ''
return out
