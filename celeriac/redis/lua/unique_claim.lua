-- Hold a unique-task key for a task unless another task holds it now.
-- KEYS[1] the key   ARGV[1] the task id   ARGV[2] how long to hold it (ms)
-- Returns the holder: ARGV[1] when this call took the key.
local held = redis.call('GET', KEYS[1])
if held then
  return held
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
