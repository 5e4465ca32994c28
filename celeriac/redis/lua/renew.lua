-- Extend the lease of every message these consumers hold in this queue: one
-- ZADD per consumer and thousand messages (XX: a lease recovered meanwhile
-- stays recovered).
-- KEYS[1] the queue's key base   ARGV[1] lease seconds   ARGV[2..] consumers
local base = KEYS[1]
local deadline = clock() + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local tags = redis.call('HKEYS', base .. ':held:' .. ARGV[i])
  for first = 1, #tags, 1000 do
    local args = {}
    for k = first, math.min(first + 999, #tags) do
      args[#args + 1] = deadline
      args[#args + 1] = tags[k]
    end
    n = n + redis.call('ZADD', base .. ':leases', 'XX', 'CH', unpack(args))
  end
end
return n
