"""The Lua scripts behind the Redis stores: each check-and-take is one atomic step in Redis.

Money is in whole nano-dollars (Lua numbers are doubles: exact up to 9e15, $9 million).
Buckets refill continuously from Redis's own clock (``TIME``), so every gateway sees one clock.
"""

from __future__ import annotations

# KEYS[1]: the key's budget for the day (hash: c = committed spend, l = leased to gateways)
# ARGV: budget, report (spend to commit), release (lease to hand back, report included),
#       want (lease wanted), need (the least worth taking), ttl seconds
# Returns {granted, committed, leased}. Invariant: committed + leased <= budget whenever
# something is granted, so no set of gateways can hold more than the budget between them.
BUDGET_LEASE = """
local committed = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local leased = tonumber(redis.call('HGET', KEYS[1], 'l') or '0')
local budget = tonumber(ARGV[1])
committed = committed + tonumber(ARGV[2])
leased = math.max(0, leased - tonumber(ARGV[3]))
local want = tonumber(ARGV[4])
local need = tonumber(ARGV[5])
local granted = 0
if want > 0 then
  local room = budget - committed - leased
  granted = math.min(want, room)
  if granted < need or granted < 0 then granted = 0 end
end
leased = leased + granted
redis.call('HSET', KEYS[1], 'c', committed, 'l', leased)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {granted, committed, leased}
"""

# KEYS[1]: the key's budget for a day. ARGV: delta (nano-dollars; negative gives back part of
# a hold), ttl seconds. Committed spend may dip below zero for a moment: a hold still in the
# lease of the gateway that took it (counted in `l`) is committed at that gateway's next sync.
BUDGET_CHARGE = """
local committed = tonumber(redis.call('HGET', KEYS[1], 'c') or '0') + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'c', committed)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return committed
"""

# KEYS: one hash per bucket (level, at). ARGV: now is Redis's; then per bucket, in KEYS order:
# capacity, per_second, want, need (want >= need). Takes `want` from every bucket if all have
# it, else `need` if all have that, else nothing. Returns {taken (0, 1 = need, 2 = want),
# wait_ms until `need` fits}.
BUCKETS_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local levels = {}
local all_want, all_need, wait = true, true, 0
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local capacity = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local want = tonumber(ARGV[base + 3])
  local need = tonumber(ARGV[base + 4])
  local level = tonumber(redis.call('HGET', key, 'level') or tostring(capacity))
  local at = tonumber(redis.call('HGET', key, 'at') or tostring(now))
  if now > at then level = math.min(capacity, level + (now - at) * rate) end
  levels[i] = level
  if level < want then all_want = false end
  if level < need then
    all_need = false
    wait = math.max(wait, (need - level) / rate)
  end
end
local taken = 0
if all_want then taken = 2 elseif all_need then taken = 1 end
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local level = levels[i]
  if taken == 2 then level = level - tonumber(ARGV[base + 3]) end
  if taken == 1 then level = level - tonumber(ARGV[base + 4]) end
  redis.call('HSET', key, 'level', level, 'at', now)
  redis.call('EXPIRE', key, 3600)
end
return {taken, math.ceil(wait * 1000)}
"""

# KEYS: bucket hashes. ARGV per bucket: capacity, per_second, amount. Gives back what a gateway
# leased and did not use (positive), or charges a debt (negative: output beyond the reserve).
BUCKETS_GIVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local capacity = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local level = tonumber(redis.call('HGET', key, 'level') or tostring(capacity))
  local at = tonumber(redis.call('HGET', key, 'at') or tostring(now))
  if now > at then level = math.min(capacity, level + (now - at) * rate) end
  level = math.min(capacity, level + tonumber(ARGV[base + 3]))
  redis.call('HSET', key, 'level', level, 'at', now)
  redis.call('EXPIRE', key, 3600)
end
return 1
"""
