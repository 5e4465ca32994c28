-- Return messages whose lease ran out to the front of their queue, or to the
-- dead letters once delivered max_deliveries times.
-- KEYS[1] the queue's key base   ARGV[1] max deliveries   ARGV[2] batch
-- ARGV[3] wake channel
-- Returns how many leases expired.
local base, maxd, channel = KEYS[1], tonumber(ARGV[1]), ARGV[3]
local now = clock()
local expired = redis.call('ZRANGEBYSCORE', base .. ':leases', '-inf', now, 'LIMIT', 0, ARGV[2])
local back = {}
for _, tag in ipairs(expired) do
  local e = unhold(base, tag)
  if e then
    local _, d = header(e)
    if d >= maxd then
      bury(base, e, 'lease expired after ' .. d .. ' deliveries (max_deliveries=' .. maxd .. ')', now)
    else
      back[#back + 1] = e
    end
  end
end
put_front(base, back)
if #back > 0 then
  wake(base, channel)
end
return #expired
