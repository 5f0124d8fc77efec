"""Rate limits (common.throttling): each API key's budgets refuse the request past them with
429, `Retry-After` and a `detail` naming the budget, before the view runs, so nothing is
stored; failed keys are limited per client address; the settings set the rates.

The throttle's clock is stopped 10 seconds into a minute (1,800,000,000 is a whole
number of minutes, hours and days since the epoch), so a minute's window has 50 seconds
left: `Retry-After: 50`.
"""

import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from common import throttling
from common.models import IdempotencyKey
from contracts.models import ApiKey, Customer
from contracts.services import api_key_create, customer_api_key_create
from metering.models import UsageEvent

WINDOW_START = 1_800_000_000.0  # 30,000,000 minutes since the epoch
NOW = WINDOW_START + 10  # 50 seconds left in the minute


@pytest.fixture(autouse=True)
def stopped_clock(monkeypatch):
    """The throttle's clock, stopped at NOW; a test moves it with `stopped_clock.at = ...`."""

    class Stopped:
        at = NOW

    monkeypatch.setattr(throttling, "clock", lambda: Stopped.at)
    return Stopped


def client_with(key: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def assert_refused(response, detail: str, retry_after: str = "50") -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == retry_after
    assert response.json() == {"detail": detail}


def one_event(event_id: str) -> dict:
    return {
        "event_id": event_id,
        "customer_id": "acme",
        "timestamp": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "model": "gpt-4o",
        "metrics": {"input_tokens": 10, "output_tokens": 5},
    }


# --- Each budget ---------------------------------------------------------------------------


def test_the_ingest_budget_refuses_the_third_event_and_stores_nothing_of_it(api, acme, settings):
    settings.TOKENTILL_THROTTLE_INGEST = "2/minute"

    first = api.post("/api/v1/events", one_event("e1"), format="json")
    second = api.post("/api/v1/events", one_event("e2"), format="json")
    third = api.post("/api/v1/events", one_event("e3"), format="json")

    assert (first.status_code, second.status_code) == (202, 202)
    assert_refused(
        third, "This API key has used its ingest budget (2 per minute). Retry in 50 seconds."
    )
    assert sorted(UsageEvent.objects.values_list("event_id", flat=True)) == ["e1", "e2"]


def test_the_reads_budget_refuses_the_third_read(api, settings):
    settings.TOKENTILL_THROTTLE_READS = "2/minute"

    answers = [api.get("/api/v1/customers").status_code for _ in range(2)]
    third = api.get("/api/v1/customers")

    assert answers == [200, 200]
    assert_refused(
        third, "This API key has used its reads budget (2 per minute). Retry in 50 seconds."
    )


def test_a_write_refused_stores_nothing_and_its_idempotency_key_is_free_once_the_window_passes(
    api, settings, stopped_clock
):
    settings.TOKENTILL_THROTTLE_WRITES = "1/minute"
    body = {"external_id": "globex", "name": "Globex", "currency": "USD"}

    first = api.post(
        "/api/v1/customers", {**body, "external_id": "acme"}, format="json",
        HTTP_IDEMPOTENCY_KEY="k-acme",
    )  # fmt: skip
    refused = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-globex")

    assert first.status_code == 201
    assert_refused(
        refused, "This API key has used its writes budget (1 per minute). Retry in 50 seconds."
    )
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["acme"]
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["k-acme"]

    # The next minute, the same request with the same key is done (not replayed).
    stopped_clock.at = WINDOW_START + 60
    retried = api.post("/api/v1/customers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-globex")

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["acme", "globex"]


def test_the_exports_budget_refuses_the_next_csv_and_leaves_reads_alone(api, acme, settings):
    settings.TOKENTILL_THROTTLE_EXPORTS = "1/minute"

    first = api.get("/api/v1/customers/acme/usage.csv")
    second = api.get("/api/v1/customers/acme/usage.csv")
    pdf = api.get("/api/v1/customers/acme/invoices/INV-1/pdf")
    read = api.get("/api/v1/customers/acme")

    assert first.status_code == 200
    assert first["Content-Type"].startswith("text/csv")
    detail = "This API key has used its exports budget (1 per minute). Retry in 50 seconds."
    assert_refused(second, detail)
    assert_refused(pdf, detail)  # PDFs count against the same budget
    assert read.status_code == 200


def test_a_customers_key_has_its_own_exports_budget(acme, settings):
    settings.TOKENTILL_THROTTLE_EXPORTS = "1/minute"
    _, first_key = customer_api_key_create(customer=acme, name="one", created_by="ops")
    _, other_key = customer_api_key_create(customer=acme, name="two", created_by="ops")
    first, other = client_with(first_key), client_with(other_key)

    assert first.get("/api/v1/customers/acme/usage.csv").status_code == 200
    assert first.get("/api/v1/customers/acme/usage.csv").status_code == 429
    assert other.get("/api/v1/customers/acme/usage.csv").status_code == 200


def test_budgets_are_per_key(api, settings):
    settings.TOKENTILL_THROTTLE_READS = "1/minute"
    _, other_key = api_key_create(name="another operator")

    assert api.get("/api/v1/customers").status_code == 200
    assert api.get("/api/v1/customers").status_code == 429
    assert client_with(other_key).get("/api/v1/customers").status_code == 200


def test_the_window_ends_and_the_budget_is_whole_again(api, settings, stopped_clock):
    settings.TOKENTILL_THROTTLE_READS = "1/minute"
    assert api.get("/api/v1/customers").status_code == 200

    stopped_clock.at = WINDOW_START + 59.5  # half a second left: Retry-After says 1
    assert api.get("/api/v1/customers")["Retry-After"] == "1"
    stopped_clock.at = WINDOW_START + 60

    assert api.get("/api/v1/customers").status_code == 200


def test_the_settings_set_the_rates(api, settings):
    settings.TOKENTILL_THROTTLE_READS = "3/hour"
    answers = [api.get("/api/v1/customers").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    # 1,800,000,000 is a whole number of hours: 3,590 seconds left in this one.
    assert_refused(
        api.get("/api/v1/customers"),
        "This API key has used its reads budget (3 per hour). Retry in 3590 seconds.",
        retry_after="3590",
    )


def test_the_default_budgets_are_generous_for_ingest_and_small_for_exports(settings):
    assert throttling.budget_rate(throttling.INGEST) == (12000, 60)
    assert throttling.budget_rate(throttling.READS) == (600, 60)
    assert throttling.budget_rate(throttling.WRITES) == (300, 60)
    assert throttling.budget_rate(throttling.EXPORTS) == (30, 60)
    assert throttling.budget_rate(throttling.AUTH_FAILURES) == (30, 60)


def test_authorizations_and_holds_count_against_ingest(api, acme, settings):
    settings.TOKENTILL_THROTTLE_INGEST = "1/minute"
    authorization = {"customer_id": "acme", "model": "gpt-4o",
                     "estimate": {"input_tokens": 10, "output_tokens": 5}}  # fmt: skip

    assert api.post("/api/v1/authorizations", authorization, format="json").status_code == 200
    refused = api.get(f"/api/v1/holds/{uuid.uuid4()}")

    assert refused.status_code == 429
    assert "ingest budget" in refused.json()["detail"]


# --- Failed keys, per address --------------------------------------------------------------


def test_an_address_past_its_failed_keys_is_refused_even_a_correct_key(operator_key, settings):
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "3/minute"
    api_key = ApiKey.objects.get()
    used_before = api_key.last_used_at
    wrong = client_with("tt_nosuchkey_0000000000")
    malformed = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Basic abc")

    with CaptureQueriesContext(connection) as failing:
        failures = [
            wrong.get("/api/v1/customers").status_code,
            malformed.get("/api/v1/customers").status_code,
            wrong.get("/api/v1/customers").status_code,
        ]
    with CaptureQueriesContext(connection) as locking:
        locked = client_with(operator_key).get("/api/v1/customers")

    assert failures == [401, 401, 401]
    assert_refused(
        locked,
        "Too many failed API key attempts from your address: the limit is 3 per minute, and "
        "every key is refused until it passes. Retry in 50 seconds.",
    )
    # Failures are counted in the cache only, and a locked address is not even looked up.
    writes = [q["sql"] for q in failing if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert len(locking) == 0
    api_key.refresh_from_db()
    assert api_key.last_used_at == used_before
    # Another address is not concerned.
    assert client_with(operator_key, "10.0.0.2").get("/api/v1/customers").status_code == 200


def test_a_wrong_secret_with_a_keys_prefix_spends_nothing_of_its_budget(operator_key, settings):
    settings.TOKENTILL_THROTTLE_READS = "2/minute"
    prefix = ApiKey.objects.get().prefix
    forged = client_with(f"tt_{prefix}_{'x' * 43}")
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"

    wrong = [forged.get("/api/v1/customers").status_code for _ in range(3)]
    right = [client_with(operator_key).get("/api/v1/customers").status_code for _ in range(3)]

    assert wrong == [401, 401, 401]
    assert right == [200, 200, 429]  # the whole budget was left for the key's owner
    assert cache.get(counter) == 3


def test_a_locked_address_spends_nothing_of_the_keys_budget(operator_key, settings):
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "1/minute"
    prefix = ApiKey.objects.get().prefix
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"
    assert client_with("tt_nosuchkey_0000000000").get("/api/v1/customers").status_code == 401

    locked = [client_with(operator_key).get("/api/v1/customers").status_code for _ in range(2)]

    assert locked == [429, 429]
    assert cache.get(counter) is None  # the lock is read first: nothing was counted


def test_a_request_without_a_key_is_not_a_failed_attempt(operator_key, settings):
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "1/minute"

    anonymous = [APIClient().get("/api/v1/customers").status_code for _ in range(3)]

    assert anonymous == [401, 401, 401]
    assert client_with(operator_key).get("/api/v1/customers").status_code == 200


def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(operator_key, settings):
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "1/minute"
    spoofed = client_with("tt_nosuchkey_0000000000", "10.0.0.1")

    assert spoofed.get("/api/v1/customers", HTTP_X_FORWARDED_FOR="1.2.3.4").status_code == 401
    # The failure counted against the connection's address, whatever the header said.
    locked = client_with(operator_key, "10.0.0.1")
    assert locked.get("/api/v1/customers", HTTP_X_FORWARDED_FOR="5.6.7.8").status_code == 429


def test_behind_one_trusted_proxy_the_address_it_appended_is_the_clients(operator_key, settings):
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "1/minute"
    settings.TOKENTILL_TRUSTED_PROXY_HOPS = 1
    through_proxy = client_with("tt_nosuchkey_0000000000", "10.0.0.1")  # the proxy
    # The client wrote "6.6.6.6" itself; the proxy appended the address it saw, 203.0.113.7.
    header = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}

    assert through_proxy.get("/api/v1/customers", **header).status_code == 401

    good = client_with(operator_key, "10.0.0.1")
    assert (
        good.get("/api/v1/customers", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7").status_code
        == 429
    )
    assert good.get("/api/v1/customers", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200


# --- The shared cache ----------------------------------------------------------------------

REDIS = "redis://127.0.0.1:6379/15"


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def on_redis(settings):
    """The shared cache on Redis, under a prefix of this test's own."""
    if not redis_reachable():
        pytest.skip(f"no Redis answers at {REDIS}: the shared cache cannot be tested here")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": f"tokentill-test-{uuid.uuid4().hex}",
        }
    }


class Process:
    """What one web process keeps of the budgets (its slices and the addresses it knows
    unlocked); a test runs calls "in" one by swapping them in."""

    def __init__(self, monkeypatch):
        self.monkeypatch, self.slices, self.unlocked = monkeypatch, {}, {}

    def call(self, client: APIClient, path: str = "/api/v1/customers") -> int:
        self.monkeypatch.setattr(throttling, "_slices", self.slices)
        self.monkeypatch.setattr(throttling, "_unlocked", self.unlocked)
        return client.get(path).status_code


def round_trips_counted(monkeypatch) -> list:
    """Every command batch sent to Redis from now on."""
    import redis

    sends = []
    send = redis.connection.Connection.send_packed_command

    def counted(self, command, *args, **kwargs):
        sends.append(command)
        return send(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counted)
    return sends


def test_on_redis_two_clients_share_one_budget(api, settings):
    if not redis_reachable():
        pytest.skip(f"no Redis answers at {REDIS}: the shared cache cannot be tested here")
    prefix = f"tokentill-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS,
            "KEY_PREFIX": prefix,
        }
    }
    settings.TOKENTILL_THROTTLE_READS = "2/minute"
    api_key = ApiKey.objects.get()
    counter = f"throttle:reads:key:{api_key.prefix}:60:{int(WINDOW_START)}"
    try:
        # Two clients with the same key, as two web processes would see it.
        key = api._credentials["HTTP_AUTHORIZATION"].split()[1]
        answers = [client_with(key).get("/api/v1/customers").status_code for _ in range(3)]

        assert answers == [200, 200, 429]
        assert cache.get(counter) == 3
    finally:
        cache.delete(counter)


def test_on_redis_a_count_is_one_round_trip_and_the_counter_expires(
    on_redis, settings, monkeypatch
):
    import redis

    settings.TOKENTILL_THROTTLE_INGEST = "2/minute"
    counter = f"throttle:ingest:key:7:60:{int(WINDOW_START)}"
    raw = redis.Redis.from_url(REDIS)
    stored_as = cache.make_and_validate_key(counter)
    try:
        assert cache.get(counter) is None  # connected: the handshake is not counted
        sends = round_trips_counted(monkeypatch)
        waits = [throttling.window_take("key:7", throttling.INGEST) for _ in range(3)]

        # Each count is SET NX and INCR, sent together: one send each (Django's own incr
        # sends EXISTS, then INCR: two, and three for a window's first request).
        assert len(sends) == 3
        assert waits == [None, None, 50]
        assert cache.get(counter) == 3
        assert 60 < raw.ttl(stored_as) <= 120  # the window's minute, and a minute more
    finally:
        cache.delete(counter)


def test_on_redis_an_api_call_makes_one_round_trip_for_its_limits(
    api, on_redis, settings, monkeypatch
):
    settings.TOKENTILL_THROTTLE_READS = "1/minute"  # slices of one request
    prefix = ApiKey.objects.get().prefix
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"
    try:
        assert cache.get(counter) is None  # connected: the handshake is not counted
        sends = round_trips_counted(monkeypatch)
        answers = [api.get("/api/v1/customers").status_code for _ in range(2)]

        # Each call: the address's lock read and the key's count, pipelined in one send.
        assert answers == [200, 429]
        assert len(sends) == 2
        assert cache.get(counter) == 2
    finally:
        cache.delete(counter)


def test_on_redis_a_busy_key_makes_one_round_trip_per_hundredth_of_its_budget(
    on_redis, operator_key, settings, monkeypatch
):
    settings.TOKENTILL_THROTTLE_READS = "1000/minute"  # slices of 10
    prefix = ApiKey.objects.get().prefix
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"
    process = Process(monkeypatch)
    client = client_with(operator_key)
    assert process.call(client) == 200  # connects; the key is read and kept
    sends = round_trips_counted(monkeypatch)

    answers = [process.call(client) for _ in range(24)]

    # Calls 1-10 spend the first slice; calls 11 and 21 take the next ones.
    assert answers == [200] * 24
    assert len(sends) == 2
    assert cache.get(counter) == 30
    assert process.slices[("reads", f"key:{prefix}")].left == 5


def test_on_redis_processes_sharing_a_key_admit_exactly_its_budget(
    on_redis, operator_key, settings, monkeypatch
):
    settings.TOKENTILL_THROTTLE_READS = "300/minute"  # slices of 3
    prefix = ApiKey.objects.get().prefix
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"
    first, second = Process(monkeypatch), Process(monkeypatch)
    client = client_with(operator_key)

    answers = [process.call(client) for _ in range(160) for process in (first, second)]

    # Each process spends slices of 3 in turn; the budget's 300th count is the last slice's
    # last, then each call asks for a slice past the budget and is refused.
    assert answers[:300] == [200] * 300
    assert answers[300:] == [429] * 20
    assert cache.get(counter) == 300 + 3 * 20


def test_on_redis_a_slice_left_over_is_given_back_with_the_next(
    on_redis, operator_key, settings, monkeypatch
):
    settings.TOKENTILL_THROTTLE_READS = "300/minute"  # slices of 3
    prefix = ApiKey.objects.get().prefix
    counter = f"throttle:reads:key:{prefix}:60:{int(WINDOW_START)}"
    process = Process(monkeypatch)
    process.call(client_with(operator_key))  # takes 3, uses 1

    # From an address this process has not seen, the lock is read, and the slice's two
    # unused counts go back with the 3 taken: 3 + (3 - 2).
    assert process.call(client_with(operator_key, "10.0.0.9")) == 200
    assert cache.get(counter) == 4
    assert process.slices[("reads", f"key:{prefix}")].left == 2


def test_on_redis_an_address_locked_by_another_process_is_refused_within_a_second(
    on_redis, operator_key, settings, monkeypatch, stopped_clock
):
    settings.TOKENTILL_THROTTLE_READS = "1000/minute"
    settings.TOKENTILL_THROTTLE_AUTH_FAILURES = "2/minute"
    serving, failing = Process(monkeypatch), Process(monkeypatch)
    assert serving.call(client_with(operator_key)) == 200
    wrong = client_with("tt_nosuchkey_0000000000")

    assert [failing.call(wrong) for _ in range(2)] == [401, 401]
    stopped_clock.at = NOW + 0.9
    trusted = serving.call(client_with(operator_key))  # it read the lock 0.9 s ago
    stopped_clock.at = NOW + 1.0
    read_again = serving.call(client_with(operator_key))

    assert trusted == 200
    assert read_again == 429
    assert failing.call(client_with(operator_key)) == 429  # the process that counted knows


def test_a_cache_that_cannot_be_reached_lets_requests_through(api, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.TOKENTILL_THROTTLE_READS = "1/minute"

    answers = [api.get("/api/v1/customers").status_code for _ in range(2)]

    assert answers == [200, 200]


def test_a_rate_that_is_not_n_per_period_stops_settings_from_loading():
    import subprocess
    import sys

    from django.conf import settings as django_settings

    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        env={"SECRET_KEY": "x", "TOKENTILL_THROTTLE_EXPORTS": "30/month", "PATH": ""},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert (
        "TOKENTILL_THROTTLE_EXPORTS is a number of requests per period, e.g. 600/minute "
        "(second, minute, hour or day), not '30/month'." in result.stderr
    )
