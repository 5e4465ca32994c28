-- Browse one queue: list or count its waiting, delayed or reserved messages, or act on
-- some of them by task id (delete, run now, requeue).
-- KEYS[1] the queue's key base
-- ARGV[1] mode: 'list', 'count', 'delete', 'run_now' or 'requeue'
-- ARGV[2] kind: 'waiting', 'delayed' or 'reserved'
-- list:  ARGV[3] offset, ARGV[4] limit, ARGV[5] '1' for newest first; returns pairs
--        {entry, extra}: extra is '' (waiting), the eta (delayed) or the tag (reserved)
-- count: returns how many
-- delete, run_now, requeue: ARGV[3] wake channel, ARGV[4..] task ids; returns how many
local base, mode, kind = KEYS[1], ARGV[1], ARGV[2]
local delayed = base .. ':delayed'

local function waiting_page(offset, limit, newest)
  -- the order workers take them: priority 9 first, the oldest first within one
  local out = {}
  local first, last, step = 9, 0, -1
  if newest then
    first, last, step = 0, 9, 1
  end
  for p = first, last, step do
    if limit <= 0 then
      break
    end
    local key = base .. ':p' .. p
    local n = redis.call('LLEN', key)
    if offset >= n then
      offset = offset - n
    else
      local items
      if newest then
        local stop = n - 1 - offset
        items = redis.call('LRANGE', key, math.max(0, stop - limit + 1), stop)
        for i = #items, 1, -1 do
          out[#out + 1] = items[i]
          out[#out + 1] = ''
        end
      else
        items = redis.call('LRANGE', key, offset, offset + limit - 1)
        for _, e in ipairs(items) do
          out[#out + 1] = e
          out[#out + 1] = ''
        end
      end
      limit, offset = limit - #items, 0
    end
  end
  return out
end

local function zset_page(key, offset, limit, newest)
  local range = newest and 'ZREVRANGE' or 'ZRANGE'
  return redis.call(range, key, offset, offset + limit - 1, 'WITHSCORES')
end

local function reserved_page(offset, limit, newest)
  local out, rows = {}, all_held(base)
  local first, last, step = offset + 1, math.min(#rows, offset + limit), 1
  if newest then
    first, last, step = #rows - offset, math.max(1, #rows - offset - limit + 1), -1
  end
  for i = first, last, step do
    out[#out + 1] = rows[i][3]
    out[#out + 1] = rows[i][2]
  end
  return out
end

if mode == 'list' then
  local offset, limit, newest = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
  if kind == 'waiting' then
    return waiting_page(offset, limit, newest)
  elseif kind == 'delayed' then
    return zset_page(delayed, offset, limit, newest)
  end
  return reserved_page(offset, limit, newest)
end

if mode == 'count' then
  if kind == 'waiting' then
    local n = 0
    for p = 0, 9 do
      n = n + redis.call('LLEN', base .. ':p' .. p)
    end
    return n
  elseif kind == 'delayed' then
    return redis.call('ZCARD', delayed)
  end
  return held_count(base)
end

local channel, wanted = ARGV[3], {}
for i = 4, #ARGV do
  wanted[ARGV[i]] = true
end
local _, now_us = clock()
local n = 0

if mode == 'delete' and kind == 'waiting' then
  for p = 0, 9 do
    local key = base .. ':p' .. p
    for _, e in ipairs(redis.call('LRANGE', key, 0, -1)) do
      if wanted[id_of(e)] then
        n = n + redis.call('LREM', key, 1, e)
      end
    end
  end
  return n
end

if kind == 'delayed' then  -- delete, or run now: to the back of its priority list
  for _, e in ipairs(redis.call('ZRANGE', delayed, 0, -1)) do
    if wanted[id_of(e)] then
      redis.call('ZREM', delayed, e)
      n = n + 1
      if mode == 'run_now' then
        local _, d = header(e)
        redis.call('RPUSH', list_of(base, e), rewrite(e, d, now_us + n))
      end
    end
  end
elseif mode == 'requeue' and kind == 'reserved' then  -- taken from its holder
  for _, row in ipairs(all_held(base)) do
    local tag, e = row[2], row[3]
    if wanted[id_of(e)] then
      unhold(base, tag)
      n = n + 1
      local _, d = header(e)
      redis.call('RPUSH', list_of(base, e), rewrite(e, math.max(d - 1, 0), now_us + n))
    end
  end
end
if n > 0 and mode ~= 'delete' then
  wake(base, channel)
end
return n
