"""Budgets, rate limits and keys shared by several gateways through one Redis.

Redis stays off most requests' path: each gateway *leases* budget and rate in small chunks
(:data:`LEASE_SHARE` of the limit, or what the request needs if more) with one atomic Lua call
(``redis_scripts.py``) and serves requests from its lease in memory. Spend is reported and idle
leases handed back every :data:`SYNC_S`. Redis grants a lease only while committed spend plus
all leases stay within the budget, so spend never exceeds a budget with any number of gateways;
the price is that near the end of a budget a gateway may refuse while another still holds an
unused lease (at most a chunk each, for at most ``SYNC_S``).

A gateway killed with its lease leaves it counted as leased until the day ends: spend is never
undercounted, at the cost of that lease's room. Keys live in a Redis hash; every change bumps a
version that each gateway polls every second, so a revocation reaches all of them promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from tiergate.limits import RateLimits
from tiergate.stores.base import (
    ApiKey,
    BudgetExceeded,
    BudgetStore,
    DaySpend,
    Grant,
    KeyRates,
    KeyStore,
    KeyStoreError,
    Refused,
    Reservation,
    StateSettings,
    Stores,
    UpstreamLimits,
    utc_day,
)
from tiergate.stores.keyfile import find_one, hash_key, key_from, new_key
from tiergate.stores.memory import key_rpm_refusal, pause_from
from tiergate.stores.redis_scripts import (
    BUCKETS_GIVE,
    BUCKETS_TAKE,
    BUDGET_CHARGE,
    BUDGET_LEASE,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tiergate.stores.redis")

NANO = 1_000_000_000
LEASE_SHARE = 0.02  # a lease is 2% of the limit (or what the request needs, if more)
SYNC_S = 0.2  # report spend, hand back idle leases, read pauses
IDLE_S = 0.5  # a lease unused this long goes back
DAY_TTL_S = 3 * 86400
CLAIM_TTL_S = 30 * 86400  # a batch's results stay available 29 days
PREFIX = "tg:"


def connect(url: str) -> Redis:
    from redis.asyncio import Redis

    return Redis.from_url(url)


@dataclass
class _Lease:
    redis_key: str
    budget: int  # nano-dollars
    leased: int = 0
    held: int = 0
    spent: int = 0  # settled here, not yet reported
    used_at: float = 0.0


class RedisBudgets(BudgetStore):
    """``spent_today`` (the shared ledger's spend per key for ``day``) seeds a day Redis does
    not know yet, e.g. after Redis lost its data: a budget never starts below the ledger."""

    def __init__(
        self, client: Redis, spent_today: Mapping[str, float] | None = None, day: str = ""
    ) -> None:
        self._client = client
        self._seed = dict(spent_today or {})
        self._seed_day = day
        self._lease_script = client.register_script(BUDGET_LEASE)
        self._charge_script = client.register_script(BUDGET_CHARGE)
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._syncer: asyncio.Task[None] | None = None

    async def reserve(
        self, key: ApiKey, max_cost_usd: float, now: float, *, minimum_usd: float | None = None
    ) -> Reservation | None:
        if key.budget_usd_day is None:
            return None
        day = utc_day(now)
        lease = self._leases.get((day, key.id))
        budget = math.floor(key.budget_usd_day * NANO)
        if lease is None:
            lease = self._leases[(day, key.id)] = _Lease(f"{PREFIX}budget:{day}:{key.id}", budget)
        lease.budget, lease.used_at = budget, time.monotonic()
        wanted = math.ceil(max_cost_usd * NANO)
        least = wanted if minimum_usd is None else math.ceil(minimum_usd * NANO)
        free = lease.leased - lease.held - lease.spent
        if free < wanted:
            chunk = max(wanted - free, math.ceil(budget * LEASE_SHARE))
            committed, leased = await self._exchange(lease, chunk, max(least - free, 0))
            free = lease.leased - lease.held - lease.spent
            if free < least:
                spend = DaySpend(committed / NANO, (leased - free) / NANO)
                raise BudgetExceeded(key, spend, least / NANO, now)
        amount = min(wanted, free)
        lease.held += amount
        reservation = Reservation(key.id, day, amount / NANO)
        reservation.nano = amount
        return reservation

    async def _exchange(self, lease: _Lease, want: int, need: int) -> tuple[int, int]:
        """Report spend, hand back what is idle, and lease ``want`` more (``need`` at least),
        in one Lua call. What is reported or handed back leaves the local lease before the
        await, so two coroutines exchanging at once never report the same spend twice."""
        report = lease.spent
        release = report
        if want == 0 and lease.held == 0:
            release = lease.leased  # idle: everything goes back
        lease.spent -= report
        lease.leased -= release
        try:
            granted, committed, leased = await self._lease_script(
                keys=[lease.redis_key],
                args=[lease.budget, report, release, want, need, DAY_TTL_S],
            )
        except BaseException:
            lease.spent += report
            lease.leased += release
            raise
        lease.leased += int(granted)
        return int(committed), int(leased)

    def settle(self, reservation: Reservation | None, actual_usd: float) -> None:
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        lease = self._leases.get((reservation.day, reservation.key_id))
        if lease is None:
            return
        lease.held -= reservation.nano
        lease.spent += math.ceil(actual_usd * NANO)

    async def spent(self, key_id: str, now: float) -> DaySpend:
        day = utc_day(now)
        found = await self._client.hmget(f"{PREFIX}budget:{day}:{key_id}", ["c", "l"])
        committed = int(found[0] or 0)
        lease = self._leases.get((day, key_id))
        local_spent = lease.spent if lease else 0
        held = lease.held if lease else 0
        return DaySpend((committed + local_spent) / NANO, held / NANO)

    async def charge(self, key_id: str, day: str, delta_usd: float, now: float) -> None:
        if day != utc_day(now):
            return  # that day's budget is closed
        # Rounded up: a hold given back is given back a nano-dollar short, never more.
        await self._charge_script(
            keys=[f"{PREFIX}budget:{day}:{key_id}"], args=[math.ceil(delta_usd * NANO), DAY_TTL_S]
        )

    async def claim(self, name: str) -> bool:
        claimed = await self._client.set(f"{PREFIX}claim:{name}", "1", nx=True, ex=CLAIM_TTL_S)
        return bool(claimed)

    async def start(self) -> None:
        for key_id, spent in self._seed.items():
            await self._client.hsetnx(
                f"{PREFIX}budget:{self._seed_day}:{key_id}", "c", math.ceil(spent * NANO)
            )
        self._syncer = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_S)
            try:
                await self.sync()
            except Exception:
                log.exception("could not report spend to Redis; trying again")

    async def sync(self, *, everything: bool = False) -> None:
        """Report spend; hand back leases idle for ``IDLE_S`` (all of them, at shutdown)."""
        idle_before = time.monotonic() - IDLE_S
        for day_key, lease in list(self._leases.items()):
            idle = lease.held == 0 and (everything or lease.used_at < idle_before)
            if lease.spent or (idle and lease.leased):
                await self._exchange(lease, 0, 0)
            if idle and lease.leased == 0 and lease.spent == 0:
                self._leases.pop(day_key, None)

    async def close(self) -> None:
        await _stop(self._syncer)
        await self.sync(everything=True)


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class _Bucket:
    redis_key: str
    capacity: float
    per_second: float
    pool: float = 0.0  # leased here and not used (negative: a debt to charge)

    @property
    def chunk(self) -> float:
        return max(1.0, self.capacity * LEASE_SHARE)


@dataclass
class _BucketSet:
    buckets: dict[str, _Bucket]
    used_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LeasedBuckets:
    """Token buckets kept in Redis, served here from small leases."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._take = client.register_script(BUCKETS_TAKE)
        self._give = client.register_script(BUCKETS_GIVE)
        self.sets: dict[str, _BucketSet] = {}

    def take_local(self, bucket_set: _BucketSet, needs: Mapping[str, float]) -> bool:
        if all(bucket_set.buckets[kind].pool >= amount for kind, amount in needs.items()):
            for kind, amount in needs.items():
                bucket_set.buckets[kind].pool -= amount
            bucket_set.used_at = time.monotonic()
            return True
        return False

    async def take(self, bucket_set: _BucketSet, needs: Mapping[str, float]) -> float:
        """Take ``needs`` (leasing more from Redis if the pools are short); 0.0 when taken,
        else seconds until they would fit."""
        if self.take_local(bucket_set, needs):
            return 0.0
        async with bucket_set.lock:  # one lease request per bucket set at a time
            if self.take_local(bucket_set, needs):
                return 0.0
            buckets = [bucket_set.buckets[kind] for kind in needs]
            args: list[float] = []
            missing = []
            for bucket, amount in zip(buckets, needs.values(), strict=True):
                short = max(0.0, amount - bucket.pool)
                missing.append(short)
                args += [bucket.capacity, bucket.per_second, short + bucket.chunk, short]
            taken, wait_ms = await self._take(keys=[b.redis_key for b in buckets], args=args)
            if int(taken) == 0:
                return max(float(wait_ms) / 1000.0, 0.001)
            for bucket, short in zip(buckets, missing, strict=True):
                bucket.pool += short + (bucket.chunk if int(taken) == 2 else 0.0)
            if not self.take_local(bucket_set, needs):  # pragma: no cover - all were topped up
                return 0.001
            return 0.0

    async def sync(self, *, everything: bool = False) -> None:
        """Hand back idle pools, charge debts."""
        idle_before = time.monotonic() - IDLE_S
        for bucket_set in self.sets.values():
            idle = everything or bucket_set.used_at < idle_before
            moving = [b for b in bucket_set.buckets.values() if b.pool < 0 or (idle and b.pool)]
            if not moving:
                continue
            args: list[float] = []
            for bucket in moving:
                args += [bucket.capacity, bucket.per_second, bucket.pool]
            await self._give(keys=[b.redis_key for b in moving], args=args)
            for bucket in moving:
                bucket.pool = 0.0


KINDS = ("requests", "input-tokens", "output-tokens")


class RedisUpstreamLimits(UpstreamLimits):
    def __init__(
        self,
        client: Redis,
        default: RateLimits,
        per_model: Mapping[str, RateLimits],
        *,
        queue_s: float,
        canonical: Callable[[str], str] = str,
    ) -> None:
        self._client = client
        self._buckets = LeasedBuckets(client)
        self._limits = {canonical(name): limits for name, limits in per_model.items()}
        self._default = default
        self._queue_s = queue_s
        self._canonical = canonical
        self._paused_until: dict[str, float] = {}
        self._syncer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    def _set_for(self, model: str) -> _BucketSet:
        found = self._buckets.sets.get(model)
        if found is None:
            limits = self._limits.get(model, self._default)
            values = (limits.rpm, limits.itpm, limits.otpm)
            buckets = {
                kind: _Bucket(f"{PREFIX}limit:{model}:{kind}", float(limit), limit / 60.0)
                for kind, limit in zip(KINDS, values, strict=True)
                if limit is not None
            }
            found = self._buckets.sets[model] = _BucketSet(buckets)
        return found

    async def acquire(self, model: str, input_tokens: int, max_tokens: int) -> Grant:
        model = self._canonical(model)
        bucket_set = self._set_for(model)
        if not bucket_set.buckets:
            return Grant(model, 0)
        wanted = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
        needs = {
            kind: min(float(wanted[kind]), bucket.capacity)
            for kind, bucket in bucket_set.buckets.items()
        }
        deadline = time.monotonic() + self._queue_s
        while True:
            now = time.monotonic()
            wait = self._paused_until.get(model, 0.0) - now
            if wait <= 0:
                wait = await self._buckets.take(bucket_set, needs)
                if wait == 0.0:
                    return Grant(model, int(needs.get("output-tokens", 0)))
            if time.monotonic() + wait > deadline:
                raise Refused(
                    f"{model}: over the configured rate limit for this model, shared by every "
                    f"gateway (room again in {wait:.1f} s)",
                    wait,
                )
            await asyncio.sleep(wait)

    def settle(self, grant: Grant, used_output: int) -> None:
        bucket_set = self._buckets.sets.get(grant.model)
        if bucket_set is None or "output-tokens" not in bucket_set.buckets:
            return
        bucket_set.buckets["output-tokens"].pool += grant.reserved_output - used_output

    def observe(self, model: str, status: int, headers: Mapping[str, str]) -> None:
        pause = pause_from(status, headers, time.time())
        if pause is None or pause <= 0:
            return
        model = self._canonical(model)
        until = time.monotonic() + pause
        self._paused_until[model] = max(until, self._paused_until.get(model, 0.0))
        # Every other gateway learns it at its next sync.
        task = asyncio.get_running_loop().create_task(self._share_pause(model, pause))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _share_pause(self, model: str, seconds: float) -> None:
        await self._client.set(f"{PREFIX}pause:{model}", "1", px=max(1, int(seconds * 1000)))

    async def _read_pauses(self) -> None:
        models = list(self._buckets.sets)
        if not models:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.pttl(f"{PREFIX}pause:{model}")
            remaining = await pipe.execute()
        now = time.monotonic()
        for model, milliseconds in zip(models, remaining, strict=True):
            if milliseconds and int(milliseconds) > 0:
                until = now + int(milliseconds) / 1000.0
                self._paused_until[model] = max(until, self._paused_until.get(model, 0.0))

    async def start(self) -> None:
        self._syncer = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_S)
            try:
                await self._buckets.sync()
                await self._read_pauses()
            except Exception:
                log.exception("could not sync rate limits with Redis; trying again")

    async def close(self) -> None:
        await _stop(self._syncer)
        await self._buckets.sync(everything=True)


class RedisKeyRates(KeyRates):
    def __init__(self, client: Redis) -> None:
        self._buckets = LeasedBuckets(client)
        self._syncer: asyncio.Task[None] | None = None

    async def check(self, key: ApiKey) -> None:
        if key.rpm is None:
            return
        bucket_set = self._buckets.sets.get(key.id)
        if bucket_set is None or bucket_set.buckets["requests"].capacity != key.rpm:
            bucket = _Bucket(f"{PREFIX}rpm:{key.id}", float(key.rpm), key.rpm / 60.0)
            bucket_set = self._buckets.sets[key.id] = _BucketSet({"requests": bucket})
        wait = await self._buckets.take(bucket_set, {"requests": 1.0})
        if wait > 0:
            raise key_rpm_refusal(key, wait)

    async def start(self) -> None:
        self._syncer = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_S)
            try:
                await self._buckets.sync()
            except Exception:
                log.exception("could not sync key rates with Redis; trying again")

    async def close(self) -> None:
        await _stop(self._syncer)
        await self._buckets.sync(everything=True)


KEYS_HASH = PREFIX + "keys"
SALT_KEY = PREFIX + "keys:salt"
VERSION_KEY = PREFIX + "keys:version"


class RedisKeyStore(KeyStore):
    """Keys in a Redis hash (id -> the key's JSON, hashed as in the file store)."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._sync = redis.Redis.from_url(url)
        self._async: Redis | None = None
        try:
            self._sync.set(SALT_KEY, os.urandom(16).hex(), nx=True)
            self._salt = bytes.fromhex(self._sync.get(SALT_KEY).decode())  # type: ignore[union-attr]
        except redis.RedisError as error:
            raise KeyStoreError(f"cannot reach the key store at {url}: {error}") from None
        self._version: bytes | None = None
        self._keys: tuple[ApiKey, ...] = ()
        self._index: dict[str, ApiKey] = {}
        self._load(self._sync.get(VERSION_KEY), self._sync.hgetall(KEYS_HASH))  # type: ignore[arg-type]

    def _load(self, version: bytes | None, rows: Mapping[bytes, bytes]) -> None:
        keys = sorted((key_from(orjson.loads(raw)) for raw in rows.values()), key=_created)
        self._keys = tuple(keys)
        self._index = {key.hash: key for key in keys if not key.revoked}
        self._version = version

    def authenticate(self, presented: str) -> ApiKey | None:
        import hmac

        digest = hash_key(self._salt, presented)
        found = self._index.get(digest)
        if found is None or not hmac.compare_digest(found.hash, digest):
            return None
        return found

    def list(self) -> tuple[ApiKey, ...]:
        return self._keys

    def create(
        self,
        name: str,
        *,
        budget_usd_day: float | None = None,
        rpm: int | None = None,
        admin: bool = False,
    ) -> tuple[ApiKey, str]:
        key, secret = new_key(self._salt, name, budget_usd_day=budget_usd_day, rpm=rpm, admin=admin)
        with self._sync.pipeline() as pipe:  # MULTI: the key and the new version together
            pipe.hset(KEYS_HASH, key.id, orjson.dumps(asdict(key)))
            pipe.incr(VERSION_KEY)
            pipe.execute()
        self._reload_sync()
        return key, secret

    def revoke(self, id_or_name: str) -> ApiKey:
        import redis

        with self._sync.pipeline() as pipe:
            while True:  # optimistic: retried if another writer changed the keys meanwhile
                try:
                    pipe.watch(KEYS_HASH)  # type: ignore[no-untyped-call]
                    rows: Mapping[bytes, bytes] = pipe.hgetall(KEYS_HASH)  # type: ignore[assignment]
                    keys = tuple(key_from(orjson.loads(raw)) for raw in rows.values())
                    revoked = replace(find_one(keys, id_or_name), revoked=True)
                    pipe.multi()
                    pipe.hset(KEYS_HASH, revoked.id, orjson.dumps(asdict(revoked)))
                    pipe.incr(VERSION_KEY)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self._reload_sync()
        return revoked

    def _reload_sync(self) -> None:
        self._load(self._sync.get(VERSION_KEY), self._sync.hgetall(KEYS_HASH))  # type: ignore[arg-type]

    async def refresh(self) -> bool:
        if self._async is None:
            self._async = connect(self.url)
        version: bytes | None = await self._async.get(VERSION_KEY)  # type: ignore[assignment]
        if version == self._version:
            return False
        self._load(version, await self._async.hgetall(KEYS_HASH))  # type: ignore[arg-type]
        return True

    async def close(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        self._sync.close()


def _created(key: ApiKey) -> float:
    return key.created_at


def open_redis_stores(
    settings: StateSettings,
    spent_today: Mapping[str, float],
    now: float,
    canonical: Callable[[str], str],
) -> Stores:
    client = connect(settings.state)
    return Stores(
        keys=RedisKeyStore(settings.state),
        budgets=RedisBudgets(client, spent_today, utc_day(now)),
        key_rates=RedisKeyRates(client),
        limits=RedisUpstreamLimits(
            client,
            settings.default_limits,
            settings.per_model_limits,
            queue_s=settings.queue_s,
            canonical=canonical,
        ),
        release=client.aclose,
    )
