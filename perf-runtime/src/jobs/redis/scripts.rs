//! The Lua scripts of [`RedisStore`](super::RedisStore): every change that
//! touches more than one key is one of these, run atomically by Redis.
//! Their arguments and answers are described above each; the Rust side
//! that builds and reads them is in the parent module.

/// Helpers shared by the scripts. A macro, not a `const`, so that
/// `concat!` can prepend it.
///
/// - `num` formats numbers itself: Redis turns a Lua number argument into
///   text with `%.14g`, which would round ids, scores and times beyond 14
///   digits.
/// - The ready score `-priority · 2³⁷ + sequence` orders by priority, then
///   FIFO; with priorities in `i16` it stays below 2⁵³, where doubles (zset
///   scores, Lua numbers) are exact. The sequence orders 2³⁷ readyings.
/// - Completed records expire after 24 h (`get` and `wait` still see them
///   for a while; memory stays bounded); dead ones stay until purged.
macro_rules! prelude {
    () => {
        r#"
local P = KEYS[1]
local function num(x) return string.format('%.0f', x) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function job_key(id) return P .. 'job:' .. id end
local function count(state, queue, delta)
  redis.call('HINCRBY', P .. 'n:' .. state, queue, delta)
end
-- Tells idle workers of every process to claim, once per script run that
-- makes a job runnable or schedules one. The message is `origin`: an
-- enqueue sets it to its store's mark, so that store (which woke its own
-- workers already) can ignore the echo.
local woken = false
local origin = '1'
local function wake()
  if not woken then
    redis.call('PUBLISH', P .. 'wake', origin)
    woken = true
  end
end
local function make_ready(id, queue, priority)
  wake()
  local seq = redis.call('INCR', P .. 'seq:ready')
  redis.call('ZADD', P .. 'ready:' .. queue, num(-priority * 137438953472 + seq), id)
  redis.call('HSET', job_key(id), 'state', 'available')
end
local function schedule(id, queue, priority, at, now)
  -- Ready now, or due later: either way idle workers look again (and learn
  -- from their claim when the next job is due).
  wake()
  if at <= now then
    make_ready(id, queue, priority)
  else
    redis.call('ZADD', P .. 'scheduled', num(at), id)
    redis.call('HSET', job_key(id), 'state', 'scheduled', 'run_at', num(at))
    count('scheduled', queue, 1)
  end
end
local function leased(id, token)
  local f = redis.call('HMGET', job_key(id), 'state', 'token', 'queue', 'priority')
  if f[1] ~= 'running' or f[2] ~= token then return nil end
  return f
end
local function unlease(id, queue)
  redis.call('ZREM', P .. 'running', id)
  count('running', queue, -1)
end
local function finish(id, queue, state, reason, now)
  local key = job_key(id)
  redis.call('HSET', key, 'state', state, 'finished_at', num(now))
  if reason then redis.call('HSET', key, 'last_error', reason) end
  local unique = redis.call('HGET', key, 'unique_key')
  if unique and redis.call('HGET', P .. 'unique', unique) == id then
    redis.call('HDEL', P .. 'unique', unique)
  end
  if state == 'dead' then
    local seq = num(redis.call('INCR', P .. 'seq:dead'))
    redis.call('ZADD', P .. 'dead', seq, id)
    redis.call('ZADD', P .. 'dead:' .. queue, seq, id)
  else
    redis.call('HDEL', key, 'payload')
    redis.call('PEXPIRE', key, 86400000)
  end
end
-- Ends the job `id` leased with `token` as `state` (`reason` when dead):
-- 1, or 0 when the lease is not, or no longer, that token's.
local function end_leased(id, token, state, reason, now)
  local f = leased(id, token)
  if not f then return 0 end
  unlease(id, f[3])
  finish(id, f[3], state, reason, now)
  return 1
end
"#
    };
}

/// `enqueue(a, now)` stores the job whose arguments start after `ARGV[a]`:
/// `queue, priority, run_at ms, max_attempts, has unique key (0/1), unique
/// key, encoded job, payload, due now (0/1)`. Returns its id and 1 when a pending job held
/// its unique key (then that job's id), else 0.
macro_rules! enqueue_fn {
    () => {
        r#"
local function enqueue(a, now, id, seq, known_queues)
  local queue, priority, run_at = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  -- Due on the client's clock: runnable now on the server's, whose clock
  -- may be a little behind (see `job_arguments`).
  local due = ARGV[a + 9] == '1'
  local has_unique, unique = ARGV[a + 5] == '1', ARGV[a + 6]
  local pending = false
  if has_unique then
    pending = redis.call('HGET', P .. 'unique', unique)
    if pending and redis.call('EXISTS', job_key(pending)) == 0 then pending = false end
  end
  if pending then return tonumber(pending), 1 end
  id = num(id)
  local key = job_key(id)
  redis.call('HSET', key, 'id', id, 'queue', queue, 'priority', priority,
    'run_at', num(run_at), 'max_attempts', ARGV[a + 4], 'job', ARGV[a + 7],
    'payload', ARGV[a + 8], 'attempts', '0', 'rescues', '0', 'enqueued_at', num(now),
    'state', due and 'available' or 'scheduled')
  if has_unique then
    redis.call('HSET', key, 'unique_key', unique)
    redis.call('HSET', P .. 'unique', unique, id)
  end
  if not known_queues[queue] then
    redis.call('SADD', P .. 'queues', queue)
    known_queues[queue] = true
  end
  if due then
    -- As make_ready, with the sequence number drawn for the whole call.
    wake()
    redis.call('ZADD', P .. 'ready:' .. queue, num(-tonumber(priority) * 137438953472 + seq), id)
  else
    schedule(id, queue, tonumber(priority), run_at, now)
  end
  return tonumber(id), 0
end
-- Draws `n` consecutive numbers from the counter `name`: the first of them.
local function draw(name, n)
  return redis.call('INCRBY', P .. name, n) - n + 1
end
"#
    };
}

/// ARGV: the enqueuing store's mark (published with the wake-up), then the
/// jobs, [`ENQUEUE_WIDTH`](super::ENQUEUE_WIDTH) values each (see
/// `enqueue_fn!`). Returns `id, duplicate` pairs.
pub(super) const ENQUEUE: &str = concat!(
    prelude!(),
    enqueue_fn!(),
    r#"
local now = now_ms()
local out = {}
origin = ARGV[1]
-- Ids and FIFO sequence numbers for every job in two calls, not two per
-- job (a job that turns out to be a duplicate leaves a gap, harmlessly).
local n = (#ARGV - 1) / 9
local first_id, first_seq = draw('seq:id', n), draw('seq:ready', n)
local known_queues = {}
for i = 0, n - 1 do
  local id, duplicate = enqueue(1 + i * 9, now, first_id + i, first_seq + i, known_queues)
  out[#out + 1] = id
  out[#out + 1] = duplicate
end
return out
"#
);

/// ARGV: schedule, run time (ms), then one job as in [`ENQUEUE`]. Stores
/// the job and moves the schedule's last run to the run time, unless a run
/// at that time or later was stored: then returns nothing.
pub(super) const ENQUEUE_RECURRING: &str = concat!(
    prelude!(),
    enqueue_fn!(),
    r#"
local fire = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', P .. 'recurring', ARGV[1]) or '-1')
if last >= fire then return {} end
redis.call('HSET', P .. 'recurring', ARGV[1], ARGV[2])
local id, duplicate = enqueue(2, now_ms(), draw('seq:id', 1), draw('seq:ready', 1), {})
return {id, duplicate}
"#
);

/// ARGV: limit, lease ms, worker, queues... Promotes due scheduled jobs
/// (all of them, in `run_at` order, so a due job of higher priority is
/// never passed over), then leases the best heads of the unpaused queues.
/// Returns the milliseconds until the next scheduled job is due on the
/// server's clock (at least 1; -1 for none, or when the limit was
/// reached), then `token, record fields` pairs.
pub(super) const CLAIM: &str = concat!(
    prelude!(),
    r#"
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', P .. 'scheduled', '-inf', num(now))
for i = 1, #due do
  local id = due[i]
  redis.call('ZREM', P .. 'scheduled', id)
  local f = redis.call('HMGET', job_key(id), 'queue', 'priority')
  if f[1] then
    count('scheduled', f[1], -1)
    make_ready(id, f[1], tonumber(f[2]))
  end
end
local limit = tonumber(ARGV[1])
local deadline = num(now + tonumber(ARGV[2]))
local queues = {}
for i = 4, #ARGV do
  if redis.call('SISMEMBER', P .. 'paused', ARGV[i]) == 0 then
    queues[#queues + 1] = ARGV[i]
  end
end
local out = {'-1'}
local claimed = 0
while claimed < limit do
  local best, best_score, best_queue = nil, nil, nil
  for j = 1, #queues do
    local head = redis.call('ZRANGE', P .. 'ready:' .. queues[j], 0, 0, 'WITHSCORES')
    if head[1] then
      local score = tonumber(head[2])
      if best == nil or score < best_score then
        best, best_score, best_queue = head[1], score, queues[j]
      end
    end
  end
  if best == nil then break end
  redis.call('ZREM', P .. 'ready:' .. best_queue, best)
  local key = job_key(best)
  if redis.call('EXISTS', key) == 1 then
    local token = num(redis.call('INCR', P .. 'seq:token'))
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'running', 'token', token, 'worker', ARGV[3],
      'lease_until', deadline)
    redis.call('ZADD', P .. 'running', deadline, best)
    count('running', best_queue, 1)
    out[#out + 1] = token
    out[#out + 1] = redis.call('HGETALL', key)
    claimed = claimed + 1
  end
end
if claimed < limit then
  local next_due = redis.call('ZRANGE', P .. 'scheduled', 0, 0, 'WITHSCORES')
  -- As a wait, not a time: the worker's clock may differ from the server's.
  if next_due[2] then out[1] = num(math.max(1, tonumber(next_due[2]) - now)) end
end
return out
"#
);

/// ARGV: id, token, extension ms.
pub(super) const HEARTBEAT: &str = concat!(
    prelude!(),
    r#"
if not leased(ARGV[1], ARGV[2]) then return 0 end
local deadline = num(now_ms() + tonumber(ARGV[3]))
redis.call('ZADD', P .. 'running', deadline, ARGV[1])
redis.call('HSET', job_key(ARGV[1]), 'lease_until', deadline)
return 1
"#
);

/// ARGV: id, token.
pub(super) const COMPLETE: &str = concat!(
    prelude!(),
    r#"
return end_leased(ARGV[1], ARGV[2], 'completed', false, now_ms())
"#
);

/// ARGV: id, token, id, token, … Returns per pair 0 (stale) or 1 (done).
pub(super) const COMPLETE_MANY: &str = concat!(
    prelude!(),
    r#"
local answers = {}
local now = now_ms()
for i = 1, #ARGV, 2 do
  answers[#answers + 1] = end_leased(ARGV[i], ARGV[i + 1], 'completed', false, now)
end
return answers
"#
);

/// ARGV: id, token, error, retry_at ms or empty. Returns 0 stale, 1 retry,
/// 2 dead.
pub(super) const FAIL: &str = concat!(
    prelude!(),
    r#"
local id = ARGV[1]
local f = leased(id, ARGV[2])
if not f then return 0 end
local key = job_key(id)
redis.call('HSET', key, 'last_error', ARGV[3])
unlease(id, f[3])
local now = now_ms()
local attempts = tonumber(redis.call('HGET', key, 'attempts'))
local max_attempts = tonumber(redis.call('HGET', key, 'max_attempts'))
if ARGV[4] ~= '' and attempts < max_attempts then
  schedule(id, f[3], tonumber(f[4]), tonumber(ARGV[4]), now)
  return 1
end
finish(id, f[3], 'dead', false, now)
return 2
"#
);

/// Snooze and release. ARGV: id, token, run_at ms or empty for now.
pub(super) const GIVE_BACK: &str = concat!(
    prelude!(),
    r#"
local id = ARGV[1]
local f = leased(id, ARGV[2])
if not f then return 0 end
local key = job_key(id)
-- Not an attempt: give back the one the claim counted.
if tonumber(redis.call('HGET', key, 'attempts')) > 0 then
  redis.call('HINCRBY', key, 'attempts', -1)
end
unlease(id, f[3])
local now = now_ms()
local at = now
if ARGV[3] ~= '' then at = tonumber(ARGV[3]) end
schedule(id, f[3], tonumber(f[4]), at, now)
return 1
"#
);

/// ARGV: id, token, reason.
pub(super) const BURY: &str = concat!(
    prelude!(),
    r#"
return end_leased(ARGV[1], ARGV[2], 'dead', ARGV[3], now_ms())
"#
);

/// ARGV: max rescues, batch. Returns rescued, buried, looked at.
pub(super) const RESCUE: &str = concat!(
    prelude!(),
    r#"
local now = now_ms()
local max_rescues = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', P .. 'running', '-inf', num(now),
  'LIMIT', 0, tonumber(ARGV[2]))
local rescued, buried = 0, 0
for i = 1, #expired do
  local id = expired[i]
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'queue', 'priority')
  if f[1] then
    unlease(id, f[1])
    local rescues = redis.call('HINCRBY', key, 'rescues', 1)
    if rescues > max_rescues then
      finish(id, f[1], 'dead', 'its worker stopped answering ' .. rescues ..
        ' times (lease ran out); not run again', now)
      buried = buried + 1
    else
      make_ready(id, f[1], tonumber(f[2]))
      rescued = rescued + 1
    end
  else
    redis.call('ZREM', P .. 'running', id)
  end
end
return {rescued, buried, #expired}
"#
);

/// ARGV: has queue (0/1), queue, limit. Returns records' fields.
pub(super) const LIST_DEAD: &str = concat!(
    prelude!(),
    r#"
local index = P .. 'dead'
if ARGV[1] == '1' then index = P .. 'dead:' .. ARGV[2] end
local ids = redis.call('ZRANGE', index, 0, tonumber(ARGV[3]) - 1)
local out = {}
for i = 1, #ids do
  out[#out + 1] = redis.call('HGETALL', job_key(ids[i]))
end
return out
"#
);

/// ARGV: id.
pub(super) const REQUEUE_DEAD: &str = concat!(
    prelude!(),
    r#"
local id = ARGV[1]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'queue', 'priority', 'unique_key')
if f[1] ~= 'dead' then return 0 end
redis.call('ZREM', P .. 'dead', id)
redis.call('ZREM', P .. 'dead:' .. f[2], id)
redis.call('HSET', key, 'attempts', '0', 'rescues', '0')
redis.call('HDEL', key, 'finished_at')
if f[4] then redis.call('HSET', P .. 'unique', f[4], id) end
make_ready(id, f[2], tonumber(f[3]))
return 1
"#
);

/// ARGV: queue. Unpauses it and wakes idle workers for its jobs.
pub(super) const RESUME: &str = concat!(
    prelude!(),
    r#"
redis.call('SREM', P .. 'paused', ARGV[1])
wake()
return 1
"#
);

/// ARGV: has queue (0/1), queue, batch. Returns how many were deleted.
pub(super) const PURGE_DEAD: &str = concat!(
    prelude!(),
    r#"
local index = P .. 'dead'
if ARGV[1] == '1' then index = P .. 'dead:' .. ARGV[2] end
local ids = redis.call('ZRANGE', index, 0, tonumber(ARGV[3]) - 1)
for i = 1, #ids do
  local id = ids[i]
  local queue = redis.call('HGET', job_key(id), 'queue')
  redis.call('DEL', job_key(id))
  redis.call('ZREM', P .. 'dead', id)
  if queue then redis.call('ZREM', P .. 'dead:' .. queue, id) end
end
return #ids
"#
);

/// Returns `queue, available, scheduled, running, dead` per queue.
pub(super) const DEPTHS: &str = concat!(
    prelude!(),
    r#"
local queues = redis.call('SMEMBERS', P .. 'queues')
local out = {}
for i = 1, #queues do
  local q = queues[i]
  out[#out + 1] = q
  out[#out + 1] = redis.call('ZCARD', P .. 'ready:' .. q)
  out[#out + 1] = tonumber(redis.call('HGET', P .. 'n:scheduled', q) or '0')
  out[#out + 1] = tonumber(redis.call('HGET', P .. 'n:running', q) or '0')
  out[#out + 1] = redis.call('ZCARD', P .. 'dead:' .. q)
end
return out
"#
);
