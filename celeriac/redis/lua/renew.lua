-- Extend the lease of every message these consumers hold in this queue.
-- KEYS[1] the queue's key base   ARGV[1] lease seconds   ARGV[2..] consumers
local base = KEYS[1]
local deadline = clock() + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  for _, tag in ipairs(redis.call('HKEYS', base .. ':held:' .. ARGV[i])) do
    n = n + redis.call('ZADD', base .. ':leases', 'XX', 'CH', deadline, tag)
  end
end
return n
