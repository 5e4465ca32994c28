-- Promote due delayed messages, then lease up to `limit` of the best ready
-- messages of these queues to one consumer: highest priority first, FIFO
-- (by order) within a priority across the queues.
-- KEYS[1..n]  key base of each queue;  KEYS[n+1], KEYS[n+2]  revocations and
--   the clock (both absent on Redis Cluster)
-- ARGV[1] n   ARGV[2] consumer   ARGV[3] limit   ARGV[4] lease seconds
-- ARGV[5] how many due messages to promote per queue at most
-- ARGV[6], ARGV[7]  bound rank and order ('' = none): take only messages that
--   rank before it (Cluster fetch across queues, see redis.py)
-- ARGV[8] wake channel prefix ('' = notify lists)   ARGV[9..8+n] queue names
-- Returns {wait, head rank, head order, tag, entry, revoked, ...}: wait is the
-- seconds until the next delayed message is due ('' = none); head is the best
-- message left in these queues ('' = none).
local n = tonumber(ARGV[1])
local consumer, limit, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local batch = tonumber(ARGV[5])
local bound_rank, bound_order = tonumber(ARGV[6]), tonumber(ARGV[7])
local channels = ARGV[8]
local revoked = KEYS[n + 1]
local now, now_us = clock()
local deadline = now + lease
local out = {'', '', ''}
local count = 0

local orders, promoted = order_clock(KEYS[n + 2], now_us), false
for qi = 1, n do
  local base = KEYS[qi]
  local due = redis.call('ZRANGEBYSCORE', base .. ':delayed', '-inf', now, 'LIMIT', 0, batch)
  for _, e in ipairs(due) do
    local _, d = header(e)
    redis.call('RPUSH', base .. ':p' .. string.sub(e, 1, 1), rewrite(e, d, orders.next()))
    promoted = true
  end
  for i = 1, #due, 1000 do
    redis.call('ZREM', base .. ':delayed', unpack(due, i, math.min(i + 999, #due)))
  end
end
if promoted then
  orders.save()
end

-- the consumer's lease covers all it holds in a queue: one per queue leased from
local leased_in = {}

local function lease_one(qi, e)
  local base, queue = KEYS[qi], ARGV[8 + qi]
  local _, d = header(e)
  local held = rewrite(e, d + 1)
  local tag = #queue .. ':' .. queue .. ':' .. redis.call('INCR', base .. ':seq') .. ':' .. consumer
  redis.call('HSET', base .. ':held:' .. consumer, tag, held)
  leased_in[qi] = true
  local flag = 0
  if revoked then
    local until_ = redis.call('ZSCORE', revoked, id_of(e))
    if until_ and tonumber(until_) > now then
      flag = 1
    end
  end
  out[#out + 1] = tag
  out[#out + 1] = held
  out[#out + 1] = flag
  count = count + 1
end

for p = 9, 0, -1 do
  local rank = 9 - p
  if count >= limit or (bound_rank and rank > bound_rank) then
    break
  end
  local bounded = bound_rank and rank == bound_rank
  if n == 1 and not bounded then
    local got = redis.call('LPOP', KEYS[1] .. ':p' .. p, limit - count)
    if got then
      for _, e in ipairs(got) do
        lease_one(1, e)
      end
    end
  else
    while count < limit do
      local best, best_order = nil, nil
      for qi = 1, n do
        local e = redis.call('LINDEX', KEYS[qi] .. ':p' .. p, 0)
        if e then
          local o = order_of(e)
          if not best or o < best_order then
            best, best_order = qi, o
          end
        end
      end
      if not best or (bounded and best_order >= bound_order) then
        break
      end
      lease_one(best, redis.call('LPOP', KEYS[best] .. ':p' .. p))
    end
  end
end

for qi in pairs(leased_in) do
  redis.call('ZADD', KEYS[qi] .. ':holders', deadline, consumer)
end

-- what is left: wake the next consumer when there is more, and say when
-- the next delayed message is due when there is nothing
local best_rank, best_order, wait = nil, nil, nil
for qi = 1, n do
  local base = KEYS[qi]
  local rank, order = nil, nil
  for p = 9, 0, -1 do
    local e = redis.call('LINDEX', base .. ':p' .. p, 0)
    if e then
      rank, order = 9 - p, order_of(e)
      break
    end
  end
  if rank then
    if count > 0 then
      wake(base, channels ~= '' and channels .. ARGV[8 + qi] or '')
    end
    if not best_rank or rank < best_rank or (rank == best_rank and order < best_order) then
      best_rank, best_order = rank, order
    end
  else
    if channels == '' then
      redis.call('DEL', base .. ':notify')
    end
    local head = redis.call('ZRANGE', base .. ':delayed', 0, 0, 'WITHSCORES')
    if head[2] then
      local w = tonumber(head[2]) - now
      if not wait or w < wait then
        wait = w
      end
    end
  end
end
if wait then
  out[1] = string.format('%.6f', math.max(wait, 0))
end
if best_rank then
  out[2], out[3] = tostring(best_rank), fmt(best_order)
end
return out
