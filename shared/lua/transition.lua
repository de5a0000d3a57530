--[[
  Moves tasks to new states, atomically, each with its indexes. One call
  carries the transitions of many tasks (the worker batches those issued in
  the same event-loop turn), so Redis parses, looks up and enters the script
  once per batch instead of once per task.

  KEYS[1]      time index (list of ids, newest first)   {prefix}:tasks
  KEYS[2]      event stream              {prefix}:events
  KEYS[3]      per-minute counters hash  {prefix}:stats:{minute}
  KEYS[4..10]  state indexes, in the order of TaskStates:
               PENDING RECEIVED STARTED RETRY: sorted sets, score = ms of entering
               SUCCESS FAILURE REVOKED: lists of ids, newest first
  KEYS[10+i]   task hash of the i-th transition   {prefix}:task:{id}

  Why lists where they can be: an entry of a list costs about 40 bytes, one
  of a sorted set about 140 (its dict entry and skiplist node beside the
  member), and a finished task sits in two indexes for the whole result TTL.
  The time index and the terminal indexes only ever gain entries at the
  head (terminal states never change), so their order is their time order
  without a score; the non-terminal indexes lose entries from anywhere, which
  is what a sorted set is for. An index entry lives as long as its record:
  trimming pops from the tail while the oldest entry's record is gone or
  older than the TTL. This reads task hashes not named in KEYS, which a
  standalone Redis allows (the key space is one prefix, never a cluster).

  ARGV[1] result TTL (seconds): applied to the hash once terminal, and to index entries
  ARGV[2] approximate maximum number of entries in the event stream (one entry per call)
  ARGV[3] channel on which terminal transitions are published, when anyone listens:
          "<id> <state> <record>", the record as a JSON array of the hash's fields and values
          (a waiter then needs no read), or "<id> <state>" when that is over ANNOUNCED_RECORD_MAX bytes
  ARGV[4] now (ms) of the call, for trimming expired index entries
  ARGV[5] JSON array with one element per transition, in KEYS order:
            [id, new state, attempt, now, fields, identity]
          attempt: 0 for PENDING, 1 for the first run, n+1 after n retries; now: ms since epoch;
          fields: [field, value, …] always written; identity: [field, value, …] written only
          when absent (a task first seen by a worker: type, queue, kwargs, …), or 0.
          (One JSON argument decoded by cjson costs Redis and the client far less than
          thousands of separate arguments.)
  ARGV[6] key of a task hash without the id ({prefix}:task:), to read the records of index entries

  Work that does not depend on the task (counters, trimming, the event
  stream entry, checking for listeners) is done once per call, and so are
  the index moves: each task's net move (from its state before the call to
  its state after it) is collected, then every index gets one variadic
  ZREM and one ZADD or LPUSH. Inside a script each redis.call costs more
  than the command itself, so per task that leaves the hash read and write
  (and its expiry). Nothing reads an index in between: the script is atomic.

  Returns, per transition, two elements {code, state}:
     1 applied; state = the new state
    -1 refused: the task is already terminal; state = its terminal state
    -2 refused: the event is behind the task's current (attempt, state); state = current
    -3 refused: no such task and no identity fields were given; state = ''
]]
local RANK = { PENDING = 0, RECEIVED = 1, STARTED = 2, RETRY = 3, SUCCESS = 4, FAILURE = 4, REVOKED = 4 }
local INDEX = { PENDING = 4, RECEIVED = 5, STARTED = 6, RETRY = 7, SUCCESS = 8, FAILURE = 9, REVOKED = 10 }
-- The time index and the terminal state indexes are lists; the others sorted sets.
local function isList(index) return index == 1 or index >= INDEX.SUCCESS end
-- Every listener gets every announcement: a large result is left to a read by whoever wants it.
local ANNOUNCED_RECORD_MAX = 16384

local ttl, maxEvents, channel, callNow, taskKey = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[6]
local listened = redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0
local results = {}
local events = {}
local counted = {}
-- Index moves, applied after the loop: per task (ids in first-moved order)
-- its state before the call (false for a new record) and its latest state
-- and time.
local moves, moved = {}, {}
local batch = cjson.decode(ARGV[5])

for i, t in ipairs(batch) do
  local key = KEYS[10 + i]
  local id, new, attempt, now, fields, identity = t[1], t[2], t[3], t[4], t[5], t[6]

  local current = redis.call('HMGET', key, 'state', 'attempts')
  local state, currentAttempt = current[1], tonumber(current[2]) or 0
  local code = 1

  if state then
    if RANK[state] == 4 then
      code = -1
    -- A late or duplicate event never moves a task backwards. The one equal
    -- step allowed is STARTED again: a redelivery after a worker died.
    elseif attempt < currentAttempt
      or (attempt == currentAttempt and (RANK[new] < RANK[state] or (RANK[new] == RANK[state] and new ~= 'STARTED'))) then
      code = -2
    end
  elseif identity == 0 then
    code = -3
    state = ''
  end

  if code ~= 1 then
    results[#results + 1] = code
    results[#results + 1] = state
  else
    if state then
      redis.call('HSET', key, 'state', new, 'attempts', attempt, unpack(fields))
      if identity ~= 0 then
        for j = 1, #identity, 2 do redis.call('HSETNX', key, identity[j], identity[j + 1]) end
      end
    else
      -- A new record: identity and fields in one write (fields win where both name a field).
      for j = 1, #fields do identity[#identity + 1] = fields[j] end
      redis.call('HSET', key, 'state', new, 'attempts', attempt, unpack(identity))
    end
    -- A success after retries keeps no error of an earlier attempt (their history is kept apart).
    if new == 'SUCCESS' and attempt > 1 then redis.call('HDEL', key, 'error', 'errorCode', 'traceback') end
    -- A run starts with no progress: a retry or a redelivery does not show the previous run's.
    if new == 'STARTED' and (attempt > 1 or state == 'STARTED') then
      redis.call('HDEL', key, 'progress', 'progressMessage')
    end

    local move = moves[id]
    if not move then
      move = { from = state or false }
      moves[id] = move
      moved[#moved + 1] = id
    end
    move.to, move.at = new, now
    if RANK[new] >= 3 then counted[new] = (counted[new] or 0) + 1 end
    if RANK[new] == 4 then
      -- Finished tasks expire after the result TTL (their index entries below).
      redis.call('EXPIRE', key, ttl)
      if listened then
        local message, record = id .. ' ' .. new, cjson.encode(redis.call('HGETALL', key))
        if #record <= ANNOUNCED_RECORD_MAX then message = message .. ' ' .. record end
        redis.call('PUBLISH', channel, message)
      end
    end
    events[#events + 1] = id .. ' ' .. new .. ' ' .. now
    results[#results + 1] = 1
    results[#results + 1] = new
  end
end

-- Per index (by KEYS position): members to remove; members to add (with
-- their scores where the index is a sorted set), oldest first.
local removals, additions = {}, {}
local function listAt(lists, index)
  local list = lists[index]
  if not list then
    list = {}
    lists[index] = list
  end
  return list
end
for _, id in ipairs(moved) do
  local move = moves[id]
  if not move.from then
    local list = listAt(additions, 1)
    list[#list + 1] = id
  elseif move.from ~= move.to then
    local list = listAt(removals, INDEX[move.from])
    list[#list + 1] = id
  end
  local list = listAt(additions, INDEX[move.to])
  -- A task that is STARTED again keeps its one entry, with the new score.
  if not isList(INDEX[move.to]) then list[#list + 1] = move.at end
  list[#list + 1] = id
end
for index, members in pairs(removals) do redis.call('ZREM', KEYS[index], unpack(members)) end
for index, members in pairs(additions) do
  if isList(index) then
    redis.call('LPUSH', KEYS[index], unpack(members))
  else
    redis.call('ZADD', KEYS[index], unpack(members))
  end
end

-- Pops a list index's oldest entries while their record is gone or its
-- `field` (ms) is older than the TTL; at most `limit` of them, so one call
-- stays short, and more than a call adds, so the tail keeps up.
local cutoff = callNow - ttl * 1000
local function trim(list, field, limit)
  for _ = 1, limit do
    local id = redis.call('LINDEX', list, -1)
    if not id then return end
    local record = redis.call('HMGET', taskKey .. id, 'state', field)
    if record[1] and not (record[2] and tonumber(record[2]) < cutoff) then return end
    redis.call('RPOP', list)
  end
end
local trimLimit = #moved + 16
for state, count in pairs(counted) do
  redis.call('HINCRBY', KEYS[3], state, count)
  if RANK[state] == 4 then trim(KEYS[INDEX[state]], 'finished', trimLimit) end
end
if next(counted) then
  redis.call('EXPIRE', KEYS[3], ttl)
  trim(KEYS[1], 'created', trimLimit)
end
-- One stream entry per call: "e" holds "<id> <state> <ms>" lines, one per applied transition.
if #events > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxEvents, '*', 'e', table.concat(events, '\n'))
end
return results
