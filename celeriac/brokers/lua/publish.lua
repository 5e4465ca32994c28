-- Store messages of one queue: ready ones at the back of their priority list,
-- future ones in the delayed set scored by eta.
-- KEYS[1]  the queue's key base
-- ARGV[1]  wake channel ('' = notify list)
-- ARGV[2..] four per message: priority, eta ('' = now), id, body
local base, channel = KEYS[1], ARGV[1]
local now, now_us = clock()
local delayed = base .. ':delayed'
local ready, first_due, wake_due = 0, nil, false
for i = 2, #ARGV, 4 do
  local p, eta, id = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local entry = p .. ':0:' .. fmt(now_us + (i - 2) / 4) .. ':' .. #id .. ':' .. id .. ARGV[i + 3]
  if eta and eta > now then
    if first_due == nil then
      local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
      first_due = head[2] and tonumber(head[2]) or math.huge
    end
    -- a waiting consumer sleeps until the earliest eta it knew: wake it for an earlier one
    if eta < first_due then
      first_due, wake_due = eta, true
    end
    redis.call('ZADD', delayed, eta, entry)
  else
    redis.call('RPUSH', base .. ':p' .. p, entry)
    ready = ready + 1
  end
end
if ready > 0 or wake_due then
  wake(base, channel)
end
return ready
