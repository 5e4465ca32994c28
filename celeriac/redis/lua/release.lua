-- Give held messages back: to the front of their queue, or to the delayed set.
-- One that counts as a delivery and has had max_deliveries is dead-lettered.
-- KEYS[1] the queue's key base
-- ARGV[1] delay seconds   ARGV[2] '1' when this counts as a delivery
-- ARGV[3] wake channel    ARGV[4] max deliveries   ARGV[5..] delivery tags
local base, delay, counted, channel = KEYS[1], tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3]
local maxd = tonumber(ARGV[4])
local now, now_us = clock()
local back = {}
for i = 5, #ARGV do
  local e = unhold(base, ARGV[i])
  if e then
    local _, d = header(e)
    if not counted and d > 0 then
      d = d - 1
    end
    if counted and d >= maxd then
      bury(base, e, 'given back after ' .. d .. ' deliveries (max_deliveries=' .. maxd .. ')', now)
    elseif delay > 0 then
      redis.call('ZADD', base .. ':delayed', now + delay, rewrite(e, d, now_us + i))
    else
      back[#back + 1] = rewrite(e, d)
    end
  end
end
put_front(base, back)
if #back > 0 or delay > 0 then
  wake(base, channel)
end
return #back
