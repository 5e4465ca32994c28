-- Ask to be told when a task's record is stored, and return it if it already is.
-- KEYS[1] the record   KEYS[2] the waiters set   ARGV[1] channel   ARGV[2] ttl ms
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call('GET', KEYS[1])
