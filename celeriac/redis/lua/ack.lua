-- Remove held messages for good; unknown tags (already recovered) are ignored.
-- KEYS[1]  the queue's key base;  ARGV  delivery tags
local n = 0
for _, tag in ipairs(ARGV) do
  if unhold(KEYS[1], tag) then
    n = n + 1
  end
end
return n
