-- Store messages: ready ones at the back of their priority list, future ones
-- in their queue's delayed set scored by eta. Orders follow the batch, so
-- FIFO holds across the queues of one batch too.
-- KEYS[1..n]  key bases of the queues;  KEYS[n+1]  the clock (optional)
-- ARGV[1] n   ARGV[2..n+1] wake channel of each queue ('' = notify list)
-- ARGV[n+2..] six per message: queue index, kind (see _lib), eta ('' = now),
--   sent (microseconds, '' = in the body), id part, body
local n = tonumber(ARGV[1])
local now, now_us = clock()
local orders = order_clock(KEYS[n + 1], now_us)
local woken, first_due = {}, {}
for i = n + 2, #ARGV, 6 do
  local qi, eta = tonumber(ARGV[i]), tonumber(ARGV[i + 2])
  local base = KEYS[qi]
  local entry = new_entry(ARGV[i + 1], orders.next(), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  if eta and eta > now then
    local delayed = base .. ':delayed'
    if first_due[qi] == nil then
      local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
      first_due[qi] = head[2] and tonumber(head[2]) or math.huge
    end
    -- a waiting consumer sleeps until the earliest eta it knew: wake it for an earlier one
    if eta < first_due[qi] then
      first_due[qi], woken[qi] = eta, true
    end
    redis.call('ZADD', delayed, eta, entry)
  else
    redis.call('RPUSH', list_of(base, entry), entry)
    woken[qi] = true
  end
end
orders.save()
for qi in pairs(woken) do
  wake(KEYS[qi], ARGV[1 + qi])
end
return 1
