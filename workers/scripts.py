"""The queue's Redis round trips: enqueue, take and finish, one round trip each.

arq's own enqueue is a WATCH/MULTI transaction and its worker spends about 30 commands
per job on bookkeeping (in-progress keys, retry counters, results, health checks);
measured here, that was most of a signature's time over the queue. These scripts keep
arq's layout of a job (see `workers.keys`) and do each step atomically on the server:

- enqueue: refuse when the queue is full, store the job, add it to the queue and push
  a wake-up token, all at once;
- take: put the jobs of workers whose lease ran out back in the queue, move up to N
  due jobs from the queue to the leases with their try count, and swallow the wake-up
  tokens of the extra jobs taken;
- finish: publish the answers, end the lease and delete the job (a pipeline).

The job and retry keys are computed inside the scripts, so this needs one Redis server
(or a cluster with every key of a deployment in one hash slot), as arq itself does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.constants import job_key_prefix, retry_key_prefix
from redis.asyncio import Redis

from .keys import job_key, leases_key, queue_name, retry_key, wake_key

__all__ = ["QueueScripts", "TakenJob"]

_ENQUEUE = """
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
return 1
"""

# Lease times are Redis's own clock (TIME), so hosts whose clocks disagree cannot cut
# each other's leases short; a caller may pass `now` instead (tests do). Redis 5 and later
# replicate a script's effects, so reading TIME before writing is allowed.
_NOW = """
local now = tonumber(ARGV[1])
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: queue, leases, wake.
# ARGV: now_ms or '', limit, lease_ms, job prefix, retry prefix, tokens already consumed.
_TAKE = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  -- Score 0: the oldest work goes first, its deadline being the nearest.
  redis.call('ZADD', KEYS[1], 0, id)
end
-- Every job is due at once (none is deferred), so the queue's order is all that counts:
-- comparing its scores, set by the producers' clocks, with ours would strand jobs.
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
local lease_until = now + tonumber(ARGV[3])
local taken = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local job = redis.call('GET', ARGV[4] .. id)
  if job then
    local tries = redis.call('INCR', ARGV[5] .. id)
    local ttl = redis.call('PTTL', ARGV[4] .. id)
    if ttl > 0 then
      redis.call('PEXPIRE', ARGV[5] .. id, ttl)
    end
    redis.call('ZADD', KEYS[2], lease_until, id)
    taken[#taken + 1] = id
    taken[#taken + 1] = job
    taken[#taken + 1] = tries
  else
    -- Past its deadline: the job key expired, so it is dropped unsigned.
    redis.call('DEL', ARGV[5] .. id)
  end
end
-- Each job enqueued pushed one token; jobs put back after a lease ran out have had theirs.
local extra = #ids - #expired - tonumber(ARGV[6])
if extra > 0 then
  redis.call('LPOP', KEYS[3], extra)
end
return taken
"""
)

# KEYS: leases. ARGV: now_ms or '', lease_ms, then the job ids still in hand.
_RENEW = (
    _NOW
    + """
local lease_until = now + tonumber(ARGV[2])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', lease_until, ARGV[i])
end
return #ARGV - 2
"""
)


@dataclass(frozen=True)
class TakenJob:
    job_id: str
    data: bytes  # arq's serialized job
    tries: int  # 1 on the first take; more when a worker died holding it


class QueueScripts:
    """The queue's round trips for one key prefix, on one Redis connection pool."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.queue = queue_name(prefix)
        self.leases = leases_key(prefix)
        self.wake = wake_key(prefix)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)

    async def enqueue(
        self, job_id: str, data: bytes, *, due_ms: int, ttl_ms: int, max_depth: int
    ) -> bool:
        """Add a job that expires after `ttl_ms`; False when `max_depth` jobs are waiting.

        The wake-up list is bounded by `max_depth` too, so it stays small with no workers.
        """
        added = await self._enqueue(
            keys=[self.queue, job_key(job_id), self.wake],
            args=[job_id, data, due_ms, max(ttl_ms, 1), max_depth, max_depth],
        )
        return bool(added)

    async def take(
        self, *, limit: int, lease_ms: int, tokens_consumed: int, now_ms: int | None = None
    ) -> list[TakenJob]:
        """Lease up to `limit` waiting jobs for `lease_ms` (from Redis's clock unless
        `now_ms` is given), first putting back the jobs of leases that ran out."""
        raw: list[Any] = await self._take(
            keys=[self.queue, self.leases, self.wake],
            args=[
                "" if now_ms is None else now_ms,
                limit,
                lease_ms,
                job_key_prefix,
                retry_key_prefix,
                tokens_consumed,
            ],
        )
        return [
            TakenJob(_text(raw[i]), bytes(raw[i + 1]), int(raw[i + 2]))
            for i in range(0, len(raw), 3)
        ]

    async def renew(self, job_ids: list[str], lease_ms: int) -> None:
        """Extend the leases of jobs still in hand by `lease_ms` from now on Redis's clock
        (XX: a finished job stays finished)."""
        if job_ids:
            await self._renew(keys=[self.leases], args=["", lease_ms, *job_ids])

    async def finish(self, job_id: str, channel: str | None, message: str | bytes) -> None:
        """Hand the answers to the caller, end the lease, delete the job: one round trip.

        With no `channel` (a job nobody can be answered for) only the clean-up is done.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            if channel is not None:
                pipe.publish(channel, message)
            pipe.zrem(self.leases, job_id)
            pipe.delete(job_key(job_id), retry_key(job_id))
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
