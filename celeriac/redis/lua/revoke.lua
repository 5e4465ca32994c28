-- Remember task ids as revoked until now + ttl; forget expired revocations.
-- KEYS[1] the revocations sorted set (id -> until)   ARGV[1] ttl   ARGV[2..] ids
local now = clock()
local until_ = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'GT', until_, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return #ARGV - 1
