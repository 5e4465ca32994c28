-- Take, renew or end the beat's leader lease, on the server's clock.
-- KEYS[1]  the beat hash;  ARGV[1] holder, ARGV[2] seconds, ARGV[3] 'hold' or 'release'
-- The field 'lease' is "<until>:<holder>"; returns it as it is afterwards (or nil).
local now = clock()
local raw = redis.call('HGET', KEYS[1], 'lease')
local expires, holder
if raw then
  local u, h = string.match(raw, '^([^:]+):(.*)$')
  expires, holder = tonumber(u), h
end
if ARGV[3] == 'release' then
  if holder == ARGV[1] then
    raw = string.format('%.6f', math.min(expires, now)) .. ':'  -- no holder: ended
    redis.call('HSET', KEYS[1], 'lease', raw)
  end
  return raw
end
if not raw or expires <= now or holder == ARGV[1] then
  raw = string.format('%.6f', now + tonumber(ARGV[2])) .. ':' .. ARGV[1]
  redis.call('HSET', KEYS[1], 'lease', raw)
end
return raw
