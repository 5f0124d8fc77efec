"""Pauses between tries: doubling with jitter up to a ceiling, never under Retry-After."""

import time
from email.utils import formatdate

from tokentill_client._http import Backoff, retry_after_seconds


def test_each_pause_is_drawn_from_the_upper_half_of_a_doubling_range_up_to_the_most():
    backoff = Backoff(first=0.5, most=4.0)
    for attempt, (low, high) in enumerate([(0.25, 0.5), (0.5, 1), (1, 2), (2, 4), (2, 4)]):
        pauses = [backoff.pause(attempt) for _ in range(200)]
        assert low <= min(pauses) and max(pauses) <= high
        assert len(set(pauses)) > 100  # jitter: clients that failed together part ways


def test_a_pause_is_never_shorter_than_retry_after():
    assert Backoff(first=0.5, most=4.0).pause(0, retry_after=12.0) == 12.0


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    in_a_minute = retry_after_seconds(formatdate(time.time() + 60, usegmt=True))
    assert 58 <= in_a_minute <= 60
    assert retry_after_seconds(formatdate(time.time() - 60, usegmt=True)) == 0.0
