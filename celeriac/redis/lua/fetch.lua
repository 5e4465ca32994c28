-- Promote due delayed messages, then lease up to `limit` of the best ready
-- messages of these queues to one consumer: highest priority first, FIFO
-- (by order) within a priority across the queues.
-- KEYS[1..n]  key base of each queue;  KEYS[n+1], KEYS[n+2]  revocations and
--   the clock (both absent on Redis Cluster)
-- ARGV[1] n   ARGV[2] consumer   ARGV[3] limit   ARGV[4] lease seconds
-- ARGV[5] how many due messages to promote per queue at most
-- ARGV[6], ARGV[7]  bound rank and order ('' = none): take only messages that
--   rank before it (Cluster fetch across queues, see redis.py)
-- ARGV[8] wake channel prefix ('' = notify lists)   ARGV[9] fetch id
-- ARGV[10..9+n] queue names
-- Returns {wait, head rank, head order, tag, entry, revoked, ...}: wait is the
-- seconds until the next delayed message is due ('' = none); head is the best
-- message left in these queues ('' = none; given on Redis Cluster only, where
-- the wake channel prefix is set).
--
-- A fetch is safe to repeat: what it leased is recorded under its id in
-- "<first queue's base>:fetch:<consumer>" (tags and their key bases, for one
-- lease), and a call with the same id returns those messages, those the
-- consumer still holds, instead of leasing more. A client whose reply was lost
-- (the connection dropped after the server ran the script) sends the same id
-- again, so nothing is left held by a consumer that does not know it.
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
local fetch_id, record = ARGV[9], KEYS[1] .. ':fetch:' .. consumer

local function revoked_flag(e)
  if revoked then
    local until_ = redis.call('ZSCORE', revoked, id_of(e))
    if until_ and tonumber(until_) > now then
      return 1
    end
  end
  return 0
end

local last = redis.call('GET', record)
if last then
  local parts, start = {}, 1
  while true do
    local stop = string.find(last, '\n', start, true)
    parts[#parts + 1] = string.sub(last, start, (stop or 0) - 1)
    if not stop then
      break
    end
    start = stop + 1
  end
  if parts[1] == fetch_id then  -- the same fetch again: its messages, not new ones
    for i = 2, #parts - 1, 2 do
      local held = redis.call('HGET', parts[i] .. ':held:' .. consumer, parts[i + 1])
      if held then
        out[#out + 1] = parts[i + 1]
        out[#out + 1] = held
        out[#out + 1] = revoked_flag(held)
      end
    end
    return out
  end
end
local leased = {fetch_id}

local orders, promoted = order_clock(KEYS[n + 2], now_us), false
for qi = 1, n do
  local base = KEYS[qi]
  local due = redis.call('ZRANGEBYSCORE', base .. ':delayed', '-inf', now, 'LIMIT', 0, batch)
  for _, e in ipairs(due) do
    local bad = malformed(e)
    if bad then
      bury(base, e, bad, now)
    else
      local _, d = header(e)
      redis.call('RPUSH', list_of(base, e), rewrite(e, d, orders.next()))
      promoted = true
    end
  end
  for i = 1, #due, 1000 do
    redis.call('ZREM', base .. ':delayed', unpack(due, i, math.min(i + 999, #due)))
  end
end
if promoted then
  orders.save()
end

-- Taking a message only notes it: its tag, its held record, the consumer's
-- lease and its revocation flag are written for the whole fetch at once below
-- (a few commands per fetch, none per message).
local pending = {}  -- {queue index, held entry, entry as taken}
local function lease_one(qi, e)
  local bad = malformed(e)
  if bad then  -- set aside alone, with the reason: its neighbours are leased as usual
    bury(KEYS[qi], e, bad, now)
    return
  end
  local _, d = header(e)
  pending[#pending + 1] = {qi, rewrite(e, d + 1), e}
  count = count + 1
end

-- one queue, no bound: LMPOP (Redis 7) takes from the best non-empty priority
-- list in one command, instead of one LPOP per priority tried
local lmpop = n == 1 and not bound_rank and (redis.REDIS_VERSION_NUM or 0) >= 0x070000
if lmpop then
  local args = {'LMPOP', 10}
  for p = 9, 0, -1 do
    args[#args + 1] = KEYS[1] .. ':p' .. p
  end
  args[#args + 1] = 'LEFT'
  args[#args + 1] = 'COUNT'
  args[#args + 1] = 0
  while count < limit do
    args[#args] = limit - count
    local got = redis.call(unpack(args))
    if not got then
      break
    end
    for _, e in ipairs(got[2]) do  -- a malformed one is buried, not counted: take again
      lease_one(1, e)
    end
  end
end

for p = 9, 0, -1 do
  local rank = 9 - p
  if lmpop or count >= limit or (bound_rank and rank > bound_rank) then
    break
  end
  local bounded = bound_rank and rank == bound_rank
  if n == 1 and not bounded then
    -- a malformed entry taken here is buried, not counted: take again for the rest
    local got = redis.call('LPOP', KEYS[1] .. ':p' .. p, limit - count)
    while got do
      for _, e in ipairs(got) do
        lease_one(1, e)
      end
      got = count < limit and redis.call('LPOP', KEYS[1] .. ':p' .. p, limit - count)
    end
  else
    while count < limit do
      local best, best_order = nil, nil
      for qi = 1, n do
        local key = KEYS[qi] .. ':p' .. p
        local e = redis.call('LINDEX', key, 0)
        while e and malformed(e) do
          bury(KEYS[qi], redis.call('LPOP', key), malformed(e), now)
          e = redis.call('LINDEX', key, 0)
        end
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

-- ids whose revocation is still in force (one ZMSCORE per thousand messages;
-- none, and no id read from an entry, when nothing is revoked)
local function revoked_flags()
  local flags = {}
  if not revoked or redis.call('EXISTS', revoked) == 0 then
    return flags
  end
  for first = 1, #pending, 1000 do
    local ids = {}
    for i = first, math.min(first + 999, #pending) do
      ids[#ids + 1] = id_of(pending[i][3])
    end
    local scores = redis.call('ZMSCORE', revoked, unpack(ids))
    for k = 1, #ids do
      local until_ = scores[k]
      flags[first + k - 1] = until_ and tonumber(until_) > now
    end
  end
  return flags
end

if count > 0 then
  -- per queue: one INCRBY for the tags, one HSET of the held records, one ZADD
  -- of the consumer's lease (it covers everything the consumer holds there)
  local taken, seq, fields = {}, {}, {}
  for _, t in ipairs(pending) do
    taken[t[1]] = (taken[t[1]] or 0) + 1
  end
  for qi = 1, n do
    if taken[qi] then
      seq[qi] = redis.call('INCRBY', KEYS[qi] .. ':seq', taken[qi]) - taken[qi]
      redis.call('ZADD', KEYS[qi] .. ':holders', deadline, consumer)
      fields[qi] = {}
    end
  end
  local flags = revoked_flags()
  for i, t in ipairs(pending) do
    local qi, queue = t[1], ARGV[9 + t[1]]
    seq[qi] = seq[qi] + 1
    local tag = #queue .. ':' .. queue .. ':' .. seq[qi] .. ':' .. consumer
    local f = fields[qi]
    f[#f + 1] = tag
    f[#f + 1] = t[2]
    out[#out + 1] = tag
    out[#out + 1] = t[2]
    out[#out + 1] = flags[i] and 1 or 0
    leased[#leased + 1] = KEYS[qi]
    leased[#leased + 1] = tag
  end
  for qi = 1, n do
    local f = fields[qi]
    if f then
      local held = KEYS[qi] .. ':held:' .. consumer
      for first = 1, #f, 2000 do
        redis.call('HSET', held, unpack(f, first, math.min(first + 1999, #f)))
      end
    end
  end
  redis.call('SET', record, table.concat(leased, '\n'), 'PX', math.ceil(lease * 1000))
end

-- what is left: wake the next consumer when there is more, and say when
-- the next delayed message is due when there is nothing
local best_rank, best_order, wait = nil, nil, nil
for qi = 1, n do
  local base = KEYS[qi]
  local rank, order, left = nil, nil, false
  if channels == '' then  -- only the Cluster fetch needs the best head's rank
    local keys = {}
    for p = 0, 9 do
      keys[#keys + 1] = base .. ':p' .. p
    end
    left = redis.call('EXISTS', unpack(keys)) > 0
  else
    for p = 9, 0, -1 do
      local e = redis.call('LINDEX', base .. ':p' .. p, 0)
      if e then
        rank, order = 9 - p, order_of(e) or 0  -- a malformed head goes when it is taken
        left = true
        break
      end
    end
  end
  if left then
    if count > 0 then
      wake(base, channels ~= '' and channels .. ARGV[9 + qi] or '')
    end
    if rank and (not best_rank or rank < best_rank
        or (rank == best_rank and order < best_order)) then
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
