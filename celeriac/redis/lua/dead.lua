-- Requeue or delete dead letters: all of them, or those with these ids.
-- KEYS[1] the queue's key base   ARGV[1] 'requeue' or 'purge'
-- ARGV[2] wake channel   ARGV[3..] ids (none = all)
local base, mode, channel = KEYS[1], ARGV[1], ARGV[2]
local dead = base .. ':dead'
local wanted = nil
if #ARGV > 2 then
  wanted = {}
  for i = 3, #ARGV do
    wanted[ARGV[i]] = true
  end
end
local _, now_us = clock()
local keep, n = {}, 0
for i, record in ipairs(redis.call('LRANGE', dead, 0, -1)) do
  local e = entry_of_dead(record)
  local id = id_of(e)
  if mode == 'requeue' and malformed(e) then
    keep[#keep + 1] = record  -- not an entry: it cannot go back to a queue, only be purged
  elseif wanted == nil or (id and wanted[id]) then
    n = n + 1
    if mode == 'requeue' then
      redis.call('RPUSH', list_of(base, e), rewrite(e, 0, now_us + i))
    end
  else
    keep[#keep + 1] = record
  end
end
if n > 0 then
  redis.call('DEL', dead)
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', dead, unpack(keep, i, math.min(i + 999, #keep)))
  end
  if mode == 'requeue' then
    wake(base, channel)
  end
end
return n
