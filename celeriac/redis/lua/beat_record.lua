-- Record runs of periodic tasks and store their messages, in one step: a run is
-- taken only when its due time is after its entry's last run ('last:<entry>'
-- in the beat hash), and then its message is stored as publish.lua would.
-- KEYS[1] the beat hash, KEYS[2] the set of queues, KEYS[3..n+2] queue bases,
-- KEYS[n+3] the clock (optional)
-- ARGV[1] n, ARGV[2..n+1] wake channels, ARGV[n+2..2n+1] queue names,
-- ARGV[2n+2..] seven per run: entry, due (ms), queue index (0: record only),
-- kind (see _lib), eta ('' = now), id part, body (which holds sent_at). Returns 1 or 0 per run.
local n = tonumber(ARGV[1])
local now, now_us = clock()
local orders = order_clock(KEYS[n + 3], now_us)
local woken, taken = {}, {}
for i = 2 * n + 2, #ARGV, 7 do
  local field = 'last:' .. ARGV[i]
  local last = tonumber(redis.call('HGET', KEYS[1], field))
  if last == nil or tonumber(ARGV[i + 1]) > last then
    redis.call('HSET', KEYS[1], field, ARGV[i + 1])
    local qi = tonumber(ARGV[i + 2])
    if qi > 0 then
      local base, eta = KEYS[2 + qi], tonumber(ARGV[i + 4])
      local entry = new_entry(ARGV[i + 3], orders.next(), '', ARGV[i + 5], ARGV[i + 6])
      if eta and eta > now then
        redis.call('ZADD', base .. ':delayed', eta, entry)
      else
        redis.call('RPUSH', list_of(base, entry), entry)
      end
      woken[qi] = true
    end
    taken[#taken + 1] = 1
  else
    taken[#taken + 1] = 0
  end
end
orders.save()
for qi in pairs(woken) do
  redis.call('SADD', KEYS[2], ARGV[n + 1 + qi])
  wake(KEYS[2 + qi], ARGV[1 + qi])
end
return taken
