-- Helpers shared by every celeriac script; the loader puts this file in front
-- of each script, so each one stays self-contained on the server.
--
-- A message is stored as one string, an "entry", in one of two layouts, told
-- apart by the first byte (see celeriac/redis/entries.py for why):
--   "<kind><deliveries>:<order><sent>:<id><body>"  (written now)
--     kind   'a'..'j': priority 0..9, the id a lowercase UUID held as its 16
--            bytes; 'A'..'J': priority 0..9, the id as text "<id length>:<id>"
--     order  8 bytes, big-endian: microseconds
--     sent   decimal microseconds from the message's sent_at to its order (the
--            body leaves sent_at out); empty when the body holds sent_at
--   "<priority>:<deliveries>:<order>:<id length>:<id><body>"  (a digit first:
--     written by earlier versions; read, moved and rewritten as it is)
-- <order> is the time in microseconds when it became ready: FIFO within a
-- priority across queues compares it. Keys of one queue all start with its
-- key base "{prefix:queue}" (see celeriac/redis/broker.py).

local function clock()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return us / 1000000, us
end

-- integers above 1e14 must not be printed in exponent form
local function fmt(n)
  return string.format('%.0f', n)
end

-- Orders: the server time in microseconds, kept strictly increasing by the
-- shared clock key when there is one (not on Redis Cluster, where a script
-- reaches one slot: there, ties between calls are possible and harmless).
local function order_clock(key, now_us)
  local last = nil  -- the clock key is read on the first order given out
  local orders = {}
  function orders.next()
    if not last then
      last = now_us - 1
      if key then
        local saved = tonumber(redis.call('GET', key))
        if saved and saved > last then
          last = saved
        end
      end
    end
    last = last + 1
    return last
  end
  function orders.save()
    if key and last then
      redis.call('SET', key, fmt(last))
    end
  end
  return orders
end

local UUID = '%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x'

-- whether an entry has the compact layout (a letter first, not a digit)
local function compact(e)
  local k = string.byte(e, 1)
  return k ~= nil and k > 57
end

-- compact layout: deliveries, where the order starts, the sent field and where
-- the id starts; nil when the header is not whole
local function head(e)
  local d, at = string.match(e, '^[a-jA-J](%d+):()')
  if not d then
    return nil
  end
  local sent, id_at = string.match(e, '^(%-?%d*):()', at + 8)
  if not sent then
    return nil
  end
  return tonumber(d), at, sent, id_at
end

-- an entry's priority (a number) and deliveries
local function header(e)
  local k = string.byte(e, 1)
  if k >= 97 then
    return k - 97, head(e)
  elseif k >= 65 then
    return k - 65, head(e)
  end
  local p, d = string.match(e, '^(%d):(%d+):')
  return tonumber(p), tonumber(d)
end

-- the list an entry waits in
local function list_of(base, e)
  return base .. ':p' .. header(e)
end

-- an entry's order; nil for a string that is not an entry
local function order_of(e)
  if compact(e) then
    local d, at = head(e)
    return d and (struct.unpack('>I8', e, at))
  end
  return tonumber(string.match(e, '^%d:%d+:(%d+):'))
end

-- an entry's id (as text); nil for a string that is not an entry
local function id_of(e)
  local n, pos
  if compact(e) then
    local d, _, _, id_at = head(e)
    if not d then
      return nil
    elseif string.byte(e, 1) >= 97 then
      return #e >= id_at + 15 and string.format(UUID, string.byte(e, id_at, id_at + 15)) or nil
    end
    n, pos = string.match(e, '^(%d+):()', id_at)
  else
    n, pos = string.match(e, '^%d:%d+:%d+:(%d+):()')
  end
  if not n or pos + tonumber(n) - 1 > #e then
    return nil
  end
  return string.sub(e, pos, pos + tonumber(n) - 1)
end

-- whether a string is valid UTF-8 (ids are decoded as text by every client)
local function utf8_ok(s)
  local i, n = 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local extra
    if c < 0x80 then
      extra = 0
    elseif c >= 0xC2 and c <= 0xDF then
      extra = 1
    elseif c >= 0xE0 and c <= 0xEF then
      extra = 2
    elseif c >= 0xF0 and c <= 0xF4 then
      extra = 3
    else
      return false
    end
    for k = 1, extra do
      local b = string.byte(s, i + k)
      if not b or b < 0x80 or b > 0xBF then
        return false
      end
    end
    i = i + extra + 1
  end
  return true
end

-- Why a string cannot be handled as an entry, or nil when it can. Every
-- script checks what it takes from a queue before it moves anything, so one
-- malformed entry (written by hand or by another program) is set aside alone
-- and a script never fails halfway (Redis keeps a failed script's writes).
local function malformed(e)
  if string.find(e, '^[a-jA-J]') then
    local d, _, _, id_at = head(e)
    if not d then
      return 'malformed entry: no valid "<kind><deliveries>:<order><sent>:" header'
    elseif string.byte(e, 1) >= 97 then  -- a UUID's 16 bytes: any bytes will do
      return #e < id_at + 15 and 'malformed entry: the id runs past the end of the entry' or nil
    end
  elseif not string.match(e, '^%d:%d+:%d+:%d+:') then
    return 'malformed entry: no valid "<priority>:<deliveries>:<order>:<id length>:" header'
  end
  local id = id_of(e)
  if not id then
    return 'malformed entry: the id runs past the end of the entry'
  end
  if not utf8_ok(id) then
    return 'malformed entry: the id is not valid UTF-8'
  end
  return nil
end

-- The entry with another delivery count and, when given, another order (a
-- number); a compact entry keeps its sent time.
local function rewrite(e, deliveries, order)
  if compact(e) then
    local _, at, sent, id_at = head(e)
    if not order then  -- the usual case: only the count changes
      return string.sub(e, 1, 1) .. deliveries .. string.sub(e, at - 1)
    end
    if sent ~= '' then
      sent = fmt(tonumber(sent) + order - struct.unpack('>I8', e, at))
    end
    return string.sub(e, 1, 1) .. deliveries .. ':' .. struct.pack('>I8', order) .. sent .. ':'
      .. string.sub(e, id_at)
  end
  local p, rest = string.match(e, '^(%d):%d+:()')
  local stop = string.find(e, ':', rest, true)
  order = order and fmt(order) or string.sub(e, rest, stop - 1)
  return p .. ':' .. deliveries .. ':' .. order .. string.sub(e, stop)
end

-- A new entry (compact layout), from what the producer prepared: the kind byte
-- and the id part (see celeriac/redis/entries.py), and its sent time in
-- microseconds ('' = the body holds it).
local function new_entry(kind, order, sent, id_part, body)
  if sent ~= '' then
    sent = fmt(order - tonumber(sent))
  end
  return kind .. '0:' .. struct.pack('>I8', order) .. sent .. ':' .. id_part .. body
end

-- a delivery tag is "<queue length>:<queue>:<sequence>:<consumer>"
local function consumer_of(tag)
  local n, pos = string.match(tag, '^(%d+):()')
  local at = n and string.match(tag, '^%d+:()', pos + tonumber(n) + 1)
  return at and string.sub(tag, at) or ''  -- not one of our tags: held by no one
end

-- a delivery tag's sequence number (0 for a string that is not one of our tags)
local function seq_of(tag)
  local n, pos = string.match(tag, '^(%d+):()')
  return n and tonumber(string.match(tag, '^(%d+):', pos + tonumber(n) + 1)) or 0
end

-- Wake a consumer waiting on this queue: a token in its notify list (taken by
-- one BLPOP), or in Redis Cluster a message on the queue's wake channel.
local function wake(base, channel)
  if channel ~= '' then
    redis.call('PUBLISH', channel, '1')
  elseif redis.call('LLEN', base .. ':notify') == 0 then
    redis.call('RPUSH', base .. ':notify', '1')
  end
end

-- remove a held message; returns its entry, or nil when the tag is unknown
-- (its holder's lease, in "<base>:holders", stays: it covers what else it holds)
local function unhold(base, tag)
  local held = base .. ':held:' .. consumer_of(tag)
  local e = redis.call('HGET', held, tag)
  if e then
    redis.call('HDEL', held, tag)
  end
  return e
end

-- every message held in this queue, as {tag, entry, ...}, oldest delivery first
local function all_held(base)
  local rows = {}
  for _, holder in ipairs(redis.call('ZRANGE', base .. ':holders', 0, -1)) do
    local kv = redis.call('HGETALL', base .. ':held:' .. holder)
    for i = 1, #kv, 2 do
      local seq = seq_of(kv[i])
      rows[#rows + 1] = {seq, kv[i], kv[i + 1]}
    end
  end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  return rows
end

-- how many messages are held in this queue
local function held_count(base)
  local n = 0
  for _, holder in ipairs(redis.call('ZRANGE', base .. ':holders', 0, -1)) do
    n = n + redis.call('HLEN', base .. ':held:' .. holder)
  end
  -- plus the leases of single tags that workers of earlier versions keep
  return n + redis.call('ZCARD', base .. ':leases')
end

-- back to the front of their priority lists, the oldest first
local function put_front(base, entries)
  table.sort(entries, function(a, b) return order_of(a) > order_of(b) end)
  for _, e in ipairs(entries) do
    redis.call('LPUSH', list_of(base, e), e)
  end
end

-- a dead letter is "<dead at, ms>:<reason length>:<reason><entry>"
local function bury(base, e, reason, now)
  redis.call('RPUSH', base .. ':dead', fmt(now * 1000) .. ':' .. #reason .. ':' .. reason .. e)
end

local function entry_of_dead(record)
  local n, pos = string.match(record, '^%d+:(%d+):()')
  if not n then
    return record
  end
  return string.sub(record, pos + tonumber(n))
end
