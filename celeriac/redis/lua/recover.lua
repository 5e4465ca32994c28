-- Give back what consumers whose lease ran out hold (to the front of their
-- queue, or to the dead letters once delivered max_deliveries times). A lease
-- is one per consumer and queue ("<base>:holders", renewed by its worker), so
-- a dead consumer's messages come back together.
-- KEYS[1] the queue's key base   ARGV[1] max deliveries   ARGV[2] batch
-- ARGV[3] wake channel
-- Returns how many messages came back or were dead-lettered.
local base, maxd, channel = KEYS[1], tonumber(ARGV[1]), ARGV[3]
local now = clock()
local back, n = {}, 0

local function give_back(e, why)
  local _, d = header(e)
  n = n + 1
  if d >= maxd then
    bury(base, e, why .. d .. ' deliveries (max_deliveries=' .. maxd .. ')', now)
  else
    back[#back + 1] = e
  end
end

local holders = base .. ':holders'
local expired = redis.call('ZRANGEBYSCORE', holders, '-inf', now, 'LIMIT', 0, ARGV[2])
for _, holder in ipairs(expired) do
  local held = base .. ':held:' .. holder
  local all = redis.call('HGETALL', held)
  for i = 2, #all, 2 do
    give_back(all[i], 'lease expired after ')
  end
  redis.call('DEL', held)
  redis.call('ZREM', holders, holder)
end

-- leases of single tags, kept by workers of earlier versions
local old = redis.call('ZRANGEBYSCORE', base .. ':leases', '-inf', now, 'LIMIT', 0, ARGV[2])
for _, tag in ipairs(old) do
  redis.call('ZREM', base .. ':leases', tag)
  local e = unhold(base, tag)
  if e then
    give_back(e, 'lease expired after ')
  end
end

put_front(base, back)
if #back > 0 then
  wake(base, channel)
end
return n
