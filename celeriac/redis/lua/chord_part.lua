-- Record one finished header task of a chord; 1 for the call that completes it.
-- KEYS[1] set of finished indexes   KEYS[2] fired flag
-- ARGV[1] index   ARGV[2] size   ARGV[3] ttl ms
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
    return 1
  end
end
return 0
