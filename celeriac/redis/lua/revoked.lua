-- Which of these task ids are revoked now.
-- KEYS[1] the revocations sorted set   ARGV ids
local now = clock()
local out = {}
for _, id in ipairs(ARGV) do
  local until_ = redis.call('ZSCORE', KEYS[1], id)
  if until_ and tonumber(until_) > now then
    out[#out + 1] = id
  end
end
return out
