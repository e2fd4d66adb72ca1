package redisqueue

import "github.com/redis/go-redis/v9"

// The scripts below are the queue's state changes that touch more than one
// key. Redis runs a script without interleaving other commands. That makes
// "check the job's status, then change it and acknowledge the entry" safe
// when two workers hold deliveries of the same job. go-redis sends EVALSHA and
// falls back to EVAL, so a restarted Redis with an empty script cache needs
// nothing special.
//
// Acknowledged entries are also deleted (XACK then XDEL): the stream then
// holds only unfinished work, and the group can be recreated from id 0
// without replaying old jobs. Finished jobs (done or failed) never change
// again: a late delivery of one is acknowledged and left alone.
//
// Scripts that schedule by time read the clock of Redis (TIME) rather than of
// the caller, so workers on hosts with skewed clocks agree on when a retry is
// due. Redis replicates a script's effects rather than the script itself (the
// default since Redis 5), which is what allows writes after TIME.

// startLua is the Lua function that startScript and readScript share. It
// marks the job of one delivered entry running and counts the attempt, and
// returns the job's fields as they are now. An entry whose job is finished,
// whose hash has expired, or whose key holds something other than a hash is
// acknowledged and deleted instead. The function then returns why: "done",
// "failed", "missing", or "unreadable: " and the Redis error. It reads the
// hash once and writes it once, because each redis.call is the expensive
// part of a script.
const startLua = `
local function put(job, at, field, value)
  if at then
    job[at] = value
  else
    job[#job + 1] = field
    job[#job + 1] = value
  end
end

local function drop(stream, group, entry, reason)
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  return reason
end

local function start(stream, group, key, entry, now)
  local job = redis.pcall('HGETALL', key)
  if job.err then
    return drop(stream, group, entry, 'unreadable: ' .. job.err)
  end
  local status, attempts, updated -- positions of the values in job
  for i = 2, #job, 2 do
    local field = job[i - 1]
    if field == 'status' then status = i
    elseif field == 'attempts' then attempts = i
    elseif field == 'updated_at' then updated = i end
  end
  local state = status and job[status]
  if not state or state == 'done' or state == 'failed' then
    return drop(stream, group, entry, state or 'missing')
  end
  local count = tostring((tonumber(attempts and job[attempts]) or 0) + 1)
  redis.call('HSET', key, 'status', 'running', 'attempts', count, 'updated_at', now)
  job[status] = 'running'
  put(job, attempts, 'attempts', count)
  put(job, updated, 'updated_at', now)
  return job
end
`

// startScript starts the jobs of entries already delivered to this
// consumer, the ones XAUTOCLAIM or a blocking XREADGROUP returned. The reply
// has one element per entry: what start returned.
//
// KEYS[1] stream, KEYS[2..n] job hashes
// ARGV[1] group, ARGV[2] now, ARGV[3..n+1] entry ids, in the order of the hashes.
var startScript = redis.NewScript(startLua + `
local out = {}
for i = 2, #KEYS do
  out[#out + 1] = start(KEYS[1], ARGV[1], KEYS[i], ARGV[i + 1], ARGV[2])
end
return out
`)

// readScript reads up to ARGV[3] new entries for the consumer and starts
// their jobs, so that a worker with jobs waiting gets them in one round trip
// instead of two. Redis runs XREADGROUP inside a script without blocking.
// When the reply is empty, the caller waits with a blocking XREADGROUP and
// then runs startScript. The reply has one {entry id, job id, start's
// result} triple per entry.
//
// The job hashes are not in KEYS because their names are only known once
// the entries are read. On Redis Cluster this needs the hash tag that the
// package comment describes.
//
// KEYS[1] stream
// ARGV[1] group, ARGV[2] consumer, ARGV[3] count, ARGV[4] now,
// ARGV[5] prefix of the job hash keys.
var readScript = redis.NewScript(startLua + `
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], '>')
if not read then return {} end
local out = {}
for _, e in ipairs(read[1][2]) do
  local entry, fields, id = e[1], e[2], ''
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'id' then id = fields[i + 1] end
  end
  out[#out + 1] = {entry, id, start(KEYS[1], ARGV[1], ARGV[5] .. id, entry, ARGV[4])}
end
return out
`)

// unchangedLua is the Lua function that completeScript, retryScript and
// deadLetterScript share. It returns why the job at key must be left as it
// is: "done", "failed", "missing", or "unreadable: " and the Redis error when
// the key holds something other than a hash. It returns nil for a job that
// is queued or running.
const unchangedLua = `
local function unchanged(key)
  local status = redis.pcall('HGET', key, 'status')
  if type(status) == 'table' and status.err then
    return 'unreadable: ' .. status.err
  end
  if not status then return 'missing' end
  if status == 'done' or status == 'failed' then return status end
  return nil
end
`

// completeScript acknowledges a batch of deliveries and marks each one's
// job done unless the job is already finished, so a job delivered twice is
// marked done once. The reply has one element per delivery: "ok", or why
// nothing changed: "done", "failed", "missing", or "unreadable: " and the
// Redis error when the job's key holds something other than a hash. One call
// for the whole batch saves Redis the set-up of a script run per job.
//
// The entries are acknowledged last. An error that stops the script halfway
// then leaves every entry of the batch pending, to be redelivered, rather
// than acknowledged with its job not done.
//
// KEYS[1] stream, KEYS[2..n] job hashes
// ARGV[1] group, ARGV[2] now, ARGV[3] retention in seconds,
// ARGV[4..n+2] entry ids, in the order of the hashes.
var completeScript = redis.NewScript(unchangedLua + `
local out = {}
for i = 2, #KEYS do
  out[i - 1] = unchanged(KEYS[i])
  if not out[i - 1] then
    redis.call('HSET', KEYS[i], 'status', 'done', 'error', '', 'updated_at', ARGV[2])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
    out[i - 1] = 'ok'
  end
end
local entries = {unpack(ARGV, 4)}
redis.call('XACK', KEYS[1], ARGV[1], unpack(entries))
redis.call('XDEL', KEYS[1], unpack(entries))
return out
`)

// retryScript acknowledges a delivery, records the error and puts the job in
// the delayed set, due delay milliseconds from now. Doing all three at once
// means a crash can neither drop the job nor leave it both pending and
// delayed. Replies "ok", or why nothing changed, as completeScript does.
//
// KEYS[1] stream, KEYS[2] job hash, KEYS[3] delayed set
// ARGV[1] group, ARGV[2] entry id, ARGV[3] now, ARGV[4] delay in ms,
// ARGV[5] error, ARGV[6] job id.
var retryScript = redis.NewScript(unchangedLua + `
local reason = unchanged(KEYS[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if reason then return reason end
redis.call('HSET', KEYS[2], 'status', 'queued', 'error', ARGV[5], 'updated_at', ARGV[3])
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], due, ARGV[6])
return 'ok'
`)

// deadLetterScript acknowledges a delivery, marks the job failed and appends
// it to the dead-letter stream, trimmed approximately so that a flood of
// failures cannot fill memory. Replies as retryScript does.
//
// KEYS[1] stream, KEYS[2] job hash, KEYS[3] dead-letter stream
// ARGV[1] group, ARGV[2] entry id, ARGV[3] now, ARGV[4] error,
// ARGV[5] retention in seconds, ARGV[6] job id, ARGV[7] dead-letter length.
var deadLetterScript = redis.NewScript(unchangedLua + `
local reason = unchanged(KEYS[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if reason then return reason end
redis.call('HSET', KEYS[2], 'status', 'failed', 'error', ARGV[4], 'updated_at', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local f = redis.call('HMGET', KEYS[2], 'type', 'attempts')
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
  'id', ARGV[6], 'type', f[1] or '', 'error', ARGV[4],
  'attempts', f[2] or '0', 'failed_at', ARGV[3])
return 'ok'
`)

// promoteScript moves retries that are due from the delayed set back onto
// the stream. Removing and appending in one script means a job is never in
// both places, nor in neither. It moves at most ARGV[1] jobs per call to
// keep the script short; the next fetch moves the rest. It replies how many
// milliseconds remain until the earliest retry left in the set is due (0
// when more are due already), or -1 when the set is empty. The reply is
// relative, so the caller's clock need not agree with Redis's.
//
// KEYS[1] delayed set, KEYS[2] stream
// ARGV[1] limit.
var promoteScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'id', id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return -1 end
return math.max(tonumber(first[2]) - now, 0)
`)

// leaveScript removes a consumer from the group if it holds no pending
// entries. XGROUP DELCONSUMER drops a consumer's pending entries with it,
// which would strand those jobs, so the check and the removal must not be
// separated. Replies 1 if the consumer left, 0 if it stays.
//
// KEYS[1] stream
// ARGV[1] group, ARGV[2] consumer.
var leaveScript = redis.NewScript(`
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
`)
