-- Delete the waiting and delayed messages of a queue; returns how many.
-- KEYS[1] the queue's key base
local base = KEYS[1]
local n = redis.call('ZCARD', base .. ':delayed')
redis.call('DEL', base .. ':delayed', base .. ':notify')
for p = 0, 9 do
  n = n + redis.call('LLEN', base .. ':p' .. p)
  redis.call('DEL', base .. ':p' .. p)
end
return n
