"""The Lua scripts Redis runs atomically; every key they touch is declared in KEYS."""

# KEYS[1] last_used zset, KEYS[2] cooldowns hash, KEYS[3] the session's binding.
# ARGV[1] now, ARGV[2] session ttl in ms (0: no stickiness), ARGV[3] model,
# then pairs: candidate email, rank (lower first).
# Returns {chosen or "", field, value, field, value …} — the cooldowns that ruled candidates out.
SELECT = r"""
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local model = ARGV[3]
local bound = false
if ttl > 0 then bound = redis.call('GET', KEYS[3]) end
local chosen, best_rank, best_used = nil, nil, nil
local cooled = {}
for i = 4, #ARGV, 2 do
  local email = ARGV[i]
  local rank = tonumber(ARGV[i + 1])
  local blocked = false
  local fields = {email .. '\n', email .. '\n' .. model}
  for _, field in ipairs(fields) do
    local value = redis.call('HGET', KEYS[2], field)
    if value then
      local untilv = tonumber(string.match(value, '^(%S+)'))
      if untilv and untilv > now then
        blocked = true
        table.insert(cooled, field)
        table.insert(cooled, value)
      else
        redis.call('HDEL', KEYS[2], field)
      end
    end
  end
  if not blocked then
    if bound and email == bound then
      chosen, best_rank, best_used = email, -math.huge, -math.huge
    else
      local used = tonumber(redis.call('ZSCORE', KEYS[1], email) or '0')
      if chosen == nil or rank < best_rank or (rank == best_rank and (used < best_used or (used == best_used and email < chosen))) then
        chosen, best_rank, best_used = email, rank, used
      end
    end
  end
end
if chosen then
  redis.call('ZADD', KEYS[1], now, chosen)
  if ttl > 0 then redis.call('SET', KEYS[3], chosen, 'PX', ttl) end
end
local out = {chosen or ''}
for _, item in ipairs(cooled) do table.insert(out, item) end
return out
"""

# KEYS[1] cooldowns hash. ARGV[1] field, ARGV[2] "until reason".
# Keeps the later of two cooldowns for the same field.
COOL = r"""
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local old_until = tonumber(string.match(old, '^(%S+)'))
  local new_until = tonumber(string.match(ARGV[2], '^(%S+)'))
  if old_until and new_until and old_until >= new_until then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS[1] fence counter, KEYS[2] refresh lock, KEYS[3] token. ARGV[1] lock ttl ms,
# ARGV[2] the token record the caller last saw ("" for none).
# Returns the fencing token when this caller holds the lock now, 0 while
# another holds it, -1 when the token changed since the caller looked.
LOCK = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local seen = redis.call('GET', KEYS[3])
if seen and seen ~= ARGV[2] then return -1 end
local fence = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], fence, 'PX', tonumber(ARGV[1]))
return fence
"""

# KEYS[1] refresh lock, KEYS[2] token. ARGV[1] fence, ARGV[2] token record, ARGV[3] ttl ms.
# The token is written only by the holder of the current fence (a holder whose
# lock expired while it waited on Google cannot overwrite a newer token).
WRITE_TOKEN = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[3])) end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS[1] the key's request times (zset). ARGV[1] now, ARGV[2] window s, ARGV[3] limit, ARGV[4] member.
# Returns {1} when admitted (and counted), {0, oldest} when the window is full.
RATE = r"""
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], count - tonumber(ARGV[3]), count - tonumber(ARGV[3]), 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return {1}
"""
