-- Move a held message to its queue's dead letters, with the reason.
-- KEYS[1] the queue's key base   ARGV[1] delivery tag   ARGV[2] reason
local e = unhold(KEYS[1], ARGV[1])
if e then
  bury(KEYS[1], e, ARGV[2], clock())
  return 1
end
return 0
