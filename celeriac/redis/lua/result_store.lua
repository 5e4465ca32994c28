-- Store a task's record with a time to live; when it is ready, hand it to
-- every process waiting for it (their channels are in the waiters set).
-- KEYS[1] the record   KEYS[2] the waiters set
-- ARGV[1] record   ARGV[2] ttl ms   ARGV[3] '1' when ready   ARGV[4] task id
-- ARGV[5] database to select first ('' = the connection's own)
if ARGV[5] ~= '' then
  redis.call('SELECT', ARGV[5])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '1' then
  local channels = redis.call('SMEMBERS', KEYS[2])
  if #channels > 0 then
    local message = #ARGV[4] .. ':' .. ARGV[4] .. ARGV[1]
    for _, channel in ipairs(channels) do
      redis.call('PUBLISH', channel, message)
    end
    redis.call('DEL', KEYS[2])
  end
end
return 1
