//! The Lua scripts that make shared counters exact: each runs atomically in Redis, so the
//! read-compare-add of one check cannot interleave with another node's.
//!
//! Values are scaled integers (see `keys::SCALE_DIGITS`). Comparisons of values are done on their
//! decimal strings (`le`), never on Lua numbers: Lua numbers are doubles, exact only to 2^53,
//! while counters use the whole 64-bit range. Additions go through `INCRBY`/`DECRBY`, which are
//! exact 64-bit integer operations in Redis.
//!
//! Record layouts in ARGV (fixed width, so the parsers stay trivial; key fields are 1-based
//! indexes into KEYS, 0 for none):
//! - rate: `key, limit, ttl_ms`
//! - quota: `kind ('p' period | 'w' window | 'f' fixed verdict), key, total_key, len_seconds,
//!   ceiling ('' = none), hard ('1'|'0'), fits ('1'|'0', for 'f')`
//! - increment: `kind ('p'|'w'), key, total_key, len_seconds, at_second, member, delta, ttl_ms`

/// Shared helpers, prepended to every script.
const PRELUDE: &str = r#"
local function le(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b end
  return a <= b
end

local function qty(member)
  return string.match(member, '^(%-?%d+)|')
end

-- Takes entries at or before `horizon` out of a window and off its total.
local function expire(z, t, horizon)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', horizon)
  if #old == 0 then return end
  for _, m in ipairs(old) do
    redis.call('DECRBY', t, qty(m))
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', horizon)
end

local function read_incr(p)
  local ti = tonumber(ARGV[p + 2])
  return {kind = ARGV[p], k = KEYS[tonumber(ARGV[p + 1])], t = ti > 0 and KEYS[ti] or nil,
    len = tonumber(ARGV[p + 3]), at = tonumber(ARGV[p + 4]), member = ARGV[p + 5],
    delta = ARGV[p + 6], ttl = ARGV[p + 7]}
end

local function marker(a)
  if a.kind == 'p' then return a.k end
  return a.t
end

-- Adds one use. A window entry already older than the window is not added; a member already in
-- the set (the same use applied twice) is not counted twice.
local function add(now, a)
  if a.kind == 'p' then
    redis.call('INCRBY', a.k, a.delta)
    redis.call('PEXPIRE', a.k, a.ttl)
    return
  end
  local horizon = now - a.len
  expire(a.k, a.t, horizon)
  if a.at > horizon and redis.call('ZADD', a.k, 'NX', a.at, a.member) == 1 then
    redis.call('INCRBY', a.t, a.delta)
  end
  redis.call('PEXPIRE', a.k, a.ttl)
  redis.call('PEXPIRE', a.t, a.ttl)
end
"#;

/// The check: count request rate limits, test quotas, and (consuming) reserve — all or nothing.
///
/// ARGV: `now, n_rates, rate*, n_quotas, quota*, n_incr, increment*`.
/// Reply: `status, index, frees_at, n_counts, counts..., useds...` where status is `seed`
/// (then the rest are the indexes of quotas whose counter must be seeded first; nothing was
/// changed), `rate` (rate limit `index` refused; its count is the last one), `quota` (quota
/// `index` refused; for a window, `frees_at` is the score of the entry whose expiry makes room)
/// or `ok`. Counts are the rate counters after this request; useds are the quota counters before
/// it (`''` for fixed verdicts).
const CHECK_BODY: &str = r#"
local now = tonumber(ARGV[1])
local p = 2
local rates = {}
for i = 1, tonumber(ARGV[p]) do
  rates[i] = {k = KEYS[tonumber(ARGV[p + 1])], limit = tonumber(ARGV[p + 2]), ttl = ARGV[p + 3]}
  p = p + 3
end
p = p + 1
local quotas = {}
for i = 1, tonumber(ARGV[p]) do
  local ki, ti = tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  quotas[i] = {kind = ARGV[p + 1], k = ki > 0 and KEYS[ki] or nil, t = ti > 0 and KEYS[ti] or nil,
    len = tonumber(ARGV[p + 4]), ceiling = ARGV[p + 5], hard = ARGV[p + 6] == '1', fits = ARGV[p + 7] == '1'}
  p = p + 7
end
p = p + 1
local incrs = {}
for i = 1, tonumber(ARGV[p]) do
  incrs[i] = read_incr(p + 1)
  p = p + 8
end

local missing = {'seed'}
for i, q in ipairs(quotas) do
  if q.kind ~= 'f' and redis.call('EXISTS', marker(q)) == 0 then missing[#missing + 1] = tostring(i) end
end
if #missing > 1 then return missing end

local counts, useds = {}, {}
local function reply(status, index, frees)
  local r = {status, tostring(index), frees, tostring(#counts)}
  for _, c in ipairs(counts) do r[#r + 1] = c end
  for _, u in ipairs(useds) do r[#r + 1] = u end
  return r
end

for i, r in ipairs(rates) do
  local c = tonumber(redis.call('GET', r.k) or '0')
  if c >= r.limit then
    counts[#counts + 1] = tostring(c)
    return reply('rate', i, '')
  end
  c = redis.call('INCR', r.k)
  if c == 1 then redis.call('PEXPIRE', r.k, r.ttl) end
  counts[#counts + 1] = tostring(c)
end

for i, q in ipairs(quotas) do
  local fits = q.fits
  if q.kind == 'f' then
    useds[#useds + 1] = ''
  else
    if q.kind == 'w' then expire(q.k, q.t, now - q.len) end
    local used = redis.call('GET', marker(q)) or '0'
    useds[#useds + 1] = used
    fits = q.ceiling == '' or le(used, q.ceiling)
  end
  if q.hard and not fits then
    local frees = ''
    if q.kind == 'w' then
      local excess = tonumber(useds[#useds]) - tonumber(q.ceiling)
      local freed = 0
      local entries = redis.call('ZRANGE', q.k, 0, 9999, 'WITHSCORES')
      for j = 1, #entries, 2 do
        freed = freed + tonumber(qty(entries[j]))
        if freed >= excess then frees = entries[j + 1]; break end
      end
    end
    return reply('quota', i, frees)
  end
end

for _, a in ipairs(incrs) do add(now, a) end
return reply('ok', 0, '')
"#;

/// Adds committed uses to the counters that exist. ARGV: `now, n, increment*`. Reply: the
/// 1-based indexes of increments whose counter does not exist (the caller seeds those from the
/// store, which already holds the use).
const APPLY_BODY: &str = r#"
local now = tonumber(ARGV[1])
local missing = {}
for i = 1, tonumber(ARGV[2]) do
  local a = read_incr(3 + (i - 1) * 8)
  if redis.call('EXISTS', marker(a)) == 1 then add(now, a) else missing[#missing + 1] = tostring(i) end
end
return missing
"#;

/// Takes back reservations whose event was a duplicate or could not be written.
/// ARGV: `now, n, increment*`. A window entry is taken off its total only if it is still there.
const GIVE_BACK_BODY: &str = r#"
for i = 1, tonumber(ARGV[2]) do
  local a = read_incr(3 + (i - 1) * 8)
  if a.kind == 'p' then
    if redis.call('EXISTS', a.k) == 1 then redis.call('DECRBY', a.k, a.delta) end
  elseif redis.call('ZREM', a.k, a.member) == 1 then
    redis.call('DECRBY', a.t, a.delta)
  end
end
return 0
"#;

/// Creates counters from the store's values unless they exist (another node may have seeded
/// them meanwhile). ARGV: `n, then per seed: kind, key, total_key, ttl_ms, value, n_entries,
/// (score, member)*`. Reply: `'1'` per seed that was written, `'0'` per seed that found the
/// counter already there.
const SEED_BODY: &str = r#"
local p = 2
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local kind, ki, ti = ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
  local ttl, value, n = ARGV[p + 3], ARGV[p + 4], tonumber(ARGV[p + 5])
  local k, t = KEYS[ki], ti > 0 and KEYS[ti] or nil
  p = p + 6
  if kind == 'p' then
    out[i] = redis.call('SET', k, value, 'NX', 'PX', ttl) and '1' or '0'
  elseif redis.call('EXISTS', t) == 1 then
    out[i] = '0'
  else
    redis.call('DEL', k)
    for j = 0, n - 1 do
      redis.call('ZADD', k, ARGV[p + 2 * j], ARGV[p + 2 * j + 1])
    end
    redis.call('SET', t, value, 'PX', ttl)
    redis.call('PEXPIRE', k, ttl)
    out[i] = '1'
  end
  p = p + 2 * n
end
return out
"#;

pub struct Scripts {
    pub check: redis::Script,
    pub apply: redis::Script,
    pub give_back: redis::Script,
    pub seed: redis::Script,
}

impl Scripts {
    pub fn new() -> Self {
        let with_prelude = |body: &str| redis::Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            check: with_prelude(CHECK_BODY),
            apply: with_prelude(APPLY_BODY),
            give_back: with_prelude(GIVE_BACK_BODY),
            seed: with_prelude(SEED_BODY),
        }
    }
}
