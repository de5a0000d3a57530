--[[
  Records a running task's progress, unless the task is finished (or unknown):
  a late report must never write into a SUCCESS, FAILURE or REVOKED record,
  nor recreate a record that expired.

  KEYS[1]  task hash  {prefix}:task:{id}

  ARGV[1]  progress, percent 0-100 (a number as a string)
  ARGV[2]  message; '' = none (the previous message is removed)

  Returns
     1 written
     0 refused: the task is terminal (SUCCESS, FAILURE, REVOKED)
    -1 refused: no such task
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then return 0 end
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1])
  redis.call('HDEL', KEYS[1], 'progressMessage')
else
  redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'progressMessage', ARGV[2])
end
return 1
