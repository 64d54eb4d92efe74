"""The Lua script behind --shared-limits (limit/shared): one provider + model + key's state in a
Redis hash, read and written atomically on Redis's own clock.

KEYS: the hash, and the sorted set of processes seen lately. ARGV: op (take | 429), process id,
the lease asked for (requests), tokens a request reserves, stated RPM and TPM (0: not known
here), the op's argument (take: seconds of this process's share to lease; 429: the pause), the
state's TTL, recovery per second, seconds a process counts as active, the most debt a
reservation may take on, the cut. Returns the requests leased, the wait before the lease may be
spent, the limits known to Redis and the processes active.

Buckets as in limit/bucket: one second of the limit, refilled at the rest; a level below zero is
debt (reservations waiting their turn); a pause empties the buckets and holds them until it ends.
"""

SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op, proc = ARGV[1], ARGV[2]
local want, tok_each = tonumber(ARGV[3]), tonumber(ARGV[4])
local rpm_in, tpm_in, arg = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local s = redis.call('HMGET', KEYS[1], 'lr', 'lt', 'rr', 'vr', 'vt', 'stamp', 'paused', 'cut')
local lr, lt, rr = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
local vr, vt = tonumber(s[4]), tonumber(s[5])
local stamp, paused, cut = tonumber(s[6]) or now, tonumber(s[7]) or 0, tonumber(s[8]) or 0
if rpm_in > 0 and rpm_in ~= lr then lr = rpm_in; rr = rpm_in end
if tpm_in > 0 then lt = tpm_in end
if rr > lr then rr = lr end
local f = 1
if lr > 0 then f = rr / lr end
local function cap(pm) return math.max(1, pm / 60) end
local function per_s(pm) return math.max(pm - cap(pm), pm / 2) / 60 end
if vr == nil then vr = cap(rr) / 2 end
if vt == nil then vt = cap(lt * f) / 2 end
if now > stamp then
  local dt = now - stamp
  if rr > 0 then vr = math.min(cap(rr), vr + dt * per_s(rr)) end
  if lt > 0 then vt = math.min(cap(lt * f), vt + dt * per_s(lt * f)) end
  if rr < lr and now - cut > 1 then rr = math.min(lr, rr + lr * ARGV[9] * dt) end
  stamp = now
end
redis.call('ZADD', KEYS[2], now, proc)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[10]))
local active = redis.call('ZCARD', KEYS[2])
local n, wait = 0, 0
if op == 'take' then
  n = want
  if rr > 0 then n = math.min(n, math.floor(per_s(rr) * arg / active)) end
  if lt > 0 then n = math.min(n, math.floor(per_s(lt * f) * arg / active / math.max(1, tok_each))) end
  if rr == 0 and lt == 0 then n = 1 end  -- no limit known yet: no lease to burst with once one is
  n = math.max(1, n)
  local debt = 0
  if rr > 0 then debt = math.max(debt, (n - vr) / per_s(rr)) end
  if lt > 0 then debt = math.max(debt, (n * tok_each - vt) / per_s(lt * f)) end
  local pause = math.max(0, stamp - now, paused - now)
  if debt > tonumber(ARGV[11]) then
    n, wait = 0, pause + debt - tonumber(ARGV[11])
  else
    if rr > 0 then vr = vr - n end
    if lt > 0 then vt = vt - n * tok_each end
    wait = pause + math.max(0, debt)
  end
elseif op == '429' then
  paused = math.max(paused, now + arg)
  vr, vt = math.min(vr, 0), math.min(vt, 0)
  stamp = math.max(stamp, paused)
  if lr > 0 and arg < 2 and now - cut >= 1 then rr = math.max(lr * 0.05, rr * ARGV[12]); cut = now end
end
redis.call('HSET', KEYS[1], 'lr', lr, 'lt', lt, 'rr', rr, 'vr', vr, 'vt', vt, 'stamp', stamp,
           'paused', paused, 'cut', cut)
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
return {n, tostring(wait), tostring(lr), tostring(lt), active}
"""
