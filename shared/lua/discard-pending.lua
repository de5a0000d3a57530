--[[
  Removes a PENDING record whose message never reached the broker, so a
  refused submission leaves nothing behind.

  KEYS[1] task hash   KEYS[2] time index (list)   KEYS[3] PENDING index (sorted set)
  ARGV[1] task id
  Returns 1 when removed, 0 when the task was absent or had already moved on.
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'PENDING' then return 0 end
redis.call('DEL', KEYS[1])
-- Searched from the head: the entry was pushed moments ago.
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
