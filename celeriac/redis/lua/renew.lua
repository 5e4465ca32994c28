-- Extend the lease of these consumers in this queue, which covers every message
-- each holds there: one ZADD (XX: a consumer whose lease ran out and whose
-- messages were given back is not brought back; its next fetch is).
-- KEYS[1] the queue's key base   ARGV[1] lease seconds   ARGV[2..] consumers
local deadline = clock() + tonumber(ARGV[1])
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = deadline
  args[#args + 1] = ARGV[i]
end
if #args == 0 then
  return 0
end
return redis.call('ZADD', KEYS[1] .. ':holders', 'XX', 'CH', unpack(args))
