--[[
  Moves one task to a new state, atomically, with its indexes.

  KEYS[1]     task hash                 {prefix}:task:{id}
  KEYS[2]     time index (zset)         {prefix}:tasks            score = created ms
  KEYS[3]     event stream              {prefix}:events
  KEYS[4]     per-minute counters hash  {prefix}:stats:{minute}
  KEYS[5..11] state indexes (zsets), in the order of TaskStates:
              PENDING RECEIVED STARTED RETRY SUCCESS FAILURE REVOKED   score = ms of entering

  ARGV[1] task id
  ARGV[2] new state
  ARGV[3] attempt (0 for PENDING, 1 for the first run, n+1 after n retries)
  ARGV[4] now (ms since epoch)
  ARGV[5] result TTL (seconds): applied to the hash and to index entries once terminal
  ARGV[6] approximate maximum length of the event stream
  ARGV[7] n: number of field/value pairs that follow and are always written
  ARGV[8 .. 7+2n]   field/value pairs to write
  ARGV[8+2n ..]     field/value pairs written only when the field is absent
                    (identity of a task first seen by a worker: type, queue, kwargs, …)

  Returns {code, state}:
     1 applied; state = the new state
    -1 refused: the task is already terminal; state = its terminal state
    -2 refused: the event is behind the task's current (attempt, state); state = current
    -3 refused: no such task and no identity fields were given; state = ''
]]
local RANK = { PENDING = 0, RECEIVED = 1, STARTED = 2, RETRY = 3, SUCCESS = 4, FAILURE = 4, REVOKED = 4 }
local INDEX = { PENDING = 5, RECEIVED = 6, STARTED = 7, RETRY = 8, SUCCESS = 9, FAILURE = 10, REVOKED = 11 }

local id, new = ARGV[1], ARGV[2]
local attempt, now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local n = tonumber(ARGV[7])
local createFrom = 8 + 2 * n

local current = redis.call('HMGET', KEYS[1], 'state', 'attempts')
local state, currentAttempt = current[1], tonumber(current[2]) or 0

if state then
  if RANK[state] == 4 then return { -1, state } end
  -- A late or duplicate event never moves a task backwards. The one equal
  -- step allowed is STARTED again: a redelivery after a worker died.
  if attempt < currentAttempt
    or (attempt == currentAttempt and (RANK[new] < RANK[state] or (RANK[new] == RANK[state] and new ~= 'STARTED'))) then
    return { -2, state }
  end
  redis.call('ZREM', KEYS[INDEX[state]], id)
else
  if createFrom > #ARGV then return { -3, '' } end
  redis.call('ZADD', KEYS[2], now, id)
end

local fields = { 'state', new, 'attempts', attempt }
for i = 8, createFrom - 1 do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
for i = createFrom, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end

redis.call('ZADD', KEYS[INDEX[new]], now, id)
if RANK[new] >= 3 then
  redis.call('HINCRBY', KEYS[4], new, 1)
  redis.call('EXPIRE', KEYS[4], ttl)
end
if RANK[new] == 4 then
  -- Finished tasks expire after the result TTL, their index entries with them.
  redis.call('EXPIRE', KEYS[1], ttl)
  local cutoff = '(' .. (now - ttl * 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[INDEX[new]], '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'id', id, 'state', new, 'at', now)
return { 1, new }
