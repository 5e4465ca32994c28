-- Set a concurrency key's state when it is still what the caller read (compare-and-set).
-- KEYS[1] the key's state   KEYS[2] the set of keys with parked messages
-- ARGV[1] the state read ('' when there was none)   ARGV[2] the new state ('' deletes)
-- ARGV[3] the key's name   ARGV[4] '1' when the new state has parked messages
-- Returns {1} when set, {0, state now (or false)} when another caller changed it first.
local now = redis.call('GET', KEYS[1])
if (now or '') ~= ARGV[1] then
  return {0, now}
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[2], ARGV[3])
else
  redis.call('SREM', KEYS[2], ARGV[3])
end
return {1}
