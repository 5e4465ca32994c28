-- Free a unique-task key when this task holds it.
-- KEYS[1] the key   ARGV[1] the task id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
