"""Rate limits: budgets of requests per API key, and of failed key attempts per address
(docs/guide/api.md, "Rate limits").

Every API key has four budgets, each a number of requests per period from the settings
(`TOKENTILL_THROTTLE_*`, DRF's "N/period"): **ingest** (events, authorizations and their
holds, token counts: what a service sends around each model call), **reads** (any other
GET), **writes** (any other POST, PUT, PATCH or DELETE) and **exports** (CSV and PDF
downloads, by the API and by the portal). A view names its budget per method in
`throttle_scopes`; without one, safe methods are reads and the rest writes.

A budget is a fixed window: at most N requests in each period, counted in the shared
cache with atomic increments (Redis in production), never a database write. An API
key's budget is keyed by the key's public prefix and counted at authentication, before
the key is looked up, together with the read of the address's failed-key lock
(`key_admit`). On Redis a process takes a busy key's budget a hundredth
at a time, so its calls make one round trip per slice rather than one each. A refused
request waits until its window ends, which `Retry-After` says in whole seconds. DRF's own
`SimpleRateThrottle` keeps a list of every request's instant per key and rewrites it on
each request, which costs too much for thousands of ingest calls a minute and loses
counts between workers. A refusal is raised before the view runs, so a
refused request stores nothing (its `Idempotency-Key` included). If the cache cannot be
reached, requests are let through and the failure logged: a limit protects the service,
it must never stop ingestion by itself.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

INGEST, READS, WRITES, EXPORTS = "ingest", "reads", "writes", "exports"
AUTH_FAILURES = "auth_failures"
SETTING_OF = {
    INGEST: "TOKENTILL_THROTTLE_INGEST",
    READS: "TOKENTILL_THROTTLE_READS",
    WRITES: "TOKENTILL_THROTTLE_WRITES",
    EXPORTS: "TOKENTILL_THROTTLE_EXPORTS",
    AUTH_FAILURES: "TOKENTILL_THROTTLE_AUTH_FAILURES",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PERIOD_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
clock = time.time  # seconds since the epoch; tests stop it


class BudgetExceeded(Throttled):
    """429 with `Retry-After` (DRF's exception handler sets it from `wait`)."""

    extra_detail_singular = "Retry in {wait} second."
    extra_detail_plural = "Retry in {wait} seconds."


def rate_parse(rate: str) -> tuple[int, int]:
    """ "600/minute" as (600, 60): DRF's `N/period`, whose period is read from its first
    letter (s, m, h or d; the settings refuse any other text)."""
    number, _, period = rate.partition("/")
    return int(number), _PERIOD_SECONDS[period[0]]


def budget_rate(scope: str) -> tuple[int, int]:
    """The budget's requests and period (seconds), read from the settings on each call."""
    return rate_parse(getattr(settings, SETTING_OF[scope]))


def budget_words(scope: str) -> str:
    number, period = budget_rate(scope)
    return f"{number:,} per {_PERIOD_WORDS[period]}"


def _window(ident: str, period: int) -> tuple[str, float]:
    """The cache key of the window `ident` is in now, and the seconds until it ends."""
    now = clock()
    start = int(now // period) * period
    return f"throttle:{ident}:{period}:{start}", start + period - now


def window_take(ident: str, scope: str) -> int | None:
    """Count one request of `ident` against budget `scope`: None when it is within the
    budget, else the whole seconds until the window ends (at least 1)."""
    number, period = budget_rate(scope)
    key, left = _window(f"{scope}:{ident}", period)
    try:
        used = _increment(key, timeout=period + 60)  # a minute more: clocks may differ
    except Exception as error:
        logger.warning("rate limit %s not counted, the cache failed: %r", scope, error)
        return None
    return None if used <= number else max(1, math.ceil(left))


def window_full(ident: str, scope: str) -> int | None:
    """Whether `ident` has used all of budget `scope` in this window, without counting a
    request: the whole seconds until the window ends, or None."""
    number, period = budget_rate(scope)
    key, left = _window(f"{scope}:{ident}", period)
    try:
        used = cache.get(key, 0)
    except Exception as error:
        logger.warning("rate limit %s not read, the cache failed: %r", scope, error)
        return None
    return max(1, math.ceil(left)) if used >= number else None


def _increment(key: str, *, timeout: int) -> int:
    """Atomic on Redis (INCR) and in local memory (under its lock); the window's first
    request creates the counter, which expires after the window.

    On Redis it is one round trip: `SET key 0 EX timeout NX` (creates the counter with its
    expiry if it is missing) and `INCR key`, pipelined. Django's `incr` asks whether the
    key exists first (EXISTS, then INCR: two round trips, three for a window's first
    request), and every API request pays for them."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        pipeline = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
        pipeline.set(full_key, 0, ex=timeout, nx=True)
        pipeline.incr(full_key)
        used: int = pipeline.execute()[1]
        return used
    try:
        return cache.incr(key)
    except ValueError:  # no counter yet
        if cache.add(key, 1, timeout=timeout):
            return 1
        return cache.incr(key)  # another request created it first


def budget_refusal(scope: str, whose: str) -> str:
    """What a refused request is told, before "Retry in N seconds."."""
    return f"This {whose} has used its {scope} budget ({budget_words(scope)})."


class ApiBudgetThrottle(BaseThrottle):
    """The API's throttle (REST_FRAMEWORK's default): the budget of the view and method,
    per API key (or signed-in user); an unauthenticated request is not counted here (it is
    refused with 401, and failed keys are limited per address by `auth_failure_*`). It
    raises its refusal rather than answering False, so the 429 names the budget (DRF's
    own says only "Request was throttled")."""

    @staticmethod
    def caller(request) -> str | None:
        """Whose budget: the API key's (by its prefix, which names it before it is looked
        up: `key_admit`), or a signed-in user's."""
        api_key = request.auth
        if getattr(api_key, "prefix", None):
            return f"key:{api_key.prefix}"
        user = request.user
        if user is not None and user.is_authenticated and user.pk is not None:
            return f"user:{user.pk}"
        return None

    def allow_request(self, request, view):
        counted = getattr(request, COUNTED, None)  # by key_admit, at authentication
        if counted is not None:
            scope, wait = counted
            whose = "API key"
        else:
            ident = self.caller(request)
            if ident is None:
                return True
            scope = budget_of(view, request.method)
            wait = window_take(ident, scope)
            whose = "API key" if ident.startswith("key:") else "user"
        if wait is not None:
            raise BudgetExceeded(wait=wait, detail=budget_refusal(scope, whose))
        return True


def budget_of(view, method: str) -> str:
    """The budget a request counts against: the view's `throttle_scopes` for its method,
    else reads for safe methods and writes for the rest."""
    scopes = getattr(view, "throttle_scopes", {})
    return scopes.get(method, READS if method in SAFE_METHODS else WRITES)


# --- failed API keys, per client address ------------------------------------------------


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or with TOKENTILL_TRUSTED_PROXY_HOPS = n > 0 the
    n-th address from the right of `X-Forwarded-For` (each trusted proxy appends the
    address it was called from, so what lies further left is the client's to write)."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = settings.TOKENTILL_TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part.strip() for part in header.split(",") if part.strip()]
    return forwarded[-hops] if len(forwarded) >= hops else remote


def auth_failures_refuse(request) -> None:
    """Refuse (429) any key from an address that failed TOKENTILL_THROTTLE_AUTH_FAILURES
    times this window, a correct key included: a locked address learns nothing, and is
    not looked up in the database."""
    wait = window_full(client_address(request), AUTH_FAILURES)
    if wait is not None:
        raise _locked_refusal(wait)


def _locked_refusal(wait: int) -> BudgetExceeded:
    return BudgetExceeded(
        wait=wait,
        detail=(
            "Too many failed API key attempts from your address: the limit is "
            f"{budget_words(AUTH_FAILURES)}, and every key is refused until it passes."
        ),
    )


def auth_failure_count(request) -> None:
    """Count a wrong, malformed or revoked key against the client's address (cache only);
    this process reads the address's lock again on its next call."""
    address = client_address(request)
    _unlocked.pop(address, None)
    window_take(address, AUTH_FAILURES)


# --- an API key's request: the address's lock and the key's budget in one round trip -------

COUNTED = "_tokentill_budget_counted"  # on the DRF request: (scope, wait) from key_admit
SLICES_PER_BUDGET = 100  # on Redis a process takes a key's budget a hundredth at a time
ADDRESS_KNOWN_SECONDS = 1.0  # how long a process trusts that an address was not locked


@dataclass
class _Slice:
    """Counts of a key's budget this process took from the cache and has not used yet."""

    window: str  # the cache key of the window they were taken in
    left: int


_slices: dict[tuple[str, str], _Slice] = {}  # (scope, "key:<prefix>") -> this window's slice
_unlocked: dict[str, float] = {}  # address -> until when it is known to be unlocked (clock)
_KEPT = 10_000  # past this many keys or addresses a memory is emptied and filled again
_slices_lock = threading.Lock()  # a process's threads (gthread workers) share the slices


def key_admit(request, *, prefix: str) -> None:
    """Before the key `prefix` names is looked up: refuse (429) an address locked by failed
    keys, as `auth_failures_refuse` does, and count the request against that key's budget
    for the view and method, which `ApiBudgetThrottle` then applies. On Redis both are one
    round trip (GET, SET NX, INCRBY pipelined), made once per slice of the budget
    (`_lock_read_and_take`): every API call asks.

    The count is given back (`key_admit_undo`) when the key turns out wrong, and never
    taken when the address is locked, so a caller who knows a key's prefix but not its
    secret spends nothing of its budget."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    scope = budget_of(view, request.method)
    locked, wait = _lock_read_and_take(client_address(request), f"key:{prefix}", scope)
    if locked is not None:
        raise _locked_refusal(locked)
    setattr(request, COUNTED, (scope, wait))


def key_admit_undo(request, *, prefix: str) -> None:
    """Give back the count `key_admit` made (the key was wrong)."""
    counted = getattr(request, COUNTED, None)
    if counted is None:
        return
    delattr(request, COUNTED)
    scope, wait = counted
    if wait is not None:  # refused: it used nothing
        return
    key, _ = _window(f"{scope}:key:{prefix}", budget_rate(scope)[1])
    with _slices_lock:
        kept = _slices.get((scope, f"key:{prefix}"))
        if kept is not None and kept.window == key:
            kept.left += 1
            return
    try:
        cache.decr(key)
    except Exception as error:  # gone already (the window ended), or the cache failed
        logger.info("rate limit %s not given back: %r", scope, error)


def _lock_read_and_take(address: str, ident: str, scope: str) -> tuple[int | None, int | None]:
    """(seconds until `address`'s lock ends, or None; seconds until `ident`'s budget window
    ends if this request is past it, or None), counting the request unless the address is
    locked.

    On Redis a process takes `ident`'s budget a slice at a time (a hundredth of it, at
    least one request) with INCRBY, and spends the slice request by request in memory; the
    address's lock is read with it and trusted for ADDRESS_KNOWN_SECONDS. So a busy key's
    calls make one round trip per slice instead of one each. What a slice did not use is
    given back with the next one taken in the same window; what is left in a slice when its
    window ends stays counted (docs/guide/api.md, "Rate limits")."""
    lock_number, lock_period = budget_rate(AUTH_FAILURES)
    lock_key, lock_left = _window(f"{AUTH_FAILURES}:{address}", lock_period)
    number, period = budget_rate(scope)
    key, left = _window(f"{scope}:{ident}", period)
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        try:
            failures = cache.get(lock_key, 0)
            if failures >= lock_number:
                return max(1, math.ceil(lock_left)), None
            used = _increment(key, timeout=period + 60)
        except Exception as error:
            logger.warning("rate limits not read or counted, the cache failed: %r", error)
            return None, None
        return None, (None if used <= number else max(1, math.ceil(left)))

    now = clock()
    with _slices_lock:
        kept = _slices.get((scope, ident))
        if kept is not None and kept.window != key:
            kept = None
        if kept is not None and kept.left > 0 and _unlocked.get(address, 0.0) > now:
            kept.left -= 1
            return None, None
    size = max(1, number // SLICES_PER_BUDGET)
    take = size - (kept.left if kept is not None else 0)
    try:
        full_lock, full_key = (backend.make_and_validate_key(k) for k in (lock_key, key))
        pipeline = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
        pipeline.get(full_lock)
        pipeline.set(full_key, 0, ex=period + 60, nx=True)
        pipeline.incrby(full_key, take)
        failures, _, used = pipeline.execute()
    except Exception as error:
        logger.warning("rate limits not read or counted, the cache failed: %r", error)
        return None, None
    # This process now holds the slice's `size` counts up to `used`: those within the budget.
    within = max(0, min(size, number - (used - size)))
    with _slices_lock:
        if len(_slices) >= _KEPT:
            _slices.clear()
        _slices[(scope, ident)] = kept = _Slice(window=key, left=within)
        if int(failures or 0) >= lock_number:
            _unlocked.pop(address, None)
            return max(1, math.ceil(lock_left)), None
        if len(_unlocked) >= _KEPT:
            _unlocked.clear()
        _unlocked[address] = now + ADDRESS_KNOWN_SECONDS
        if kept.left == 0:
            return None, max(1, math.ceil(left))
        kept.left -= 1
        return None, None
