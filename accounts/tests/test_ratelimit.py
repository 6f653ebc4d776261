import pytest
from django.core.cache import cache

from common.errors import RateLimited
from common.ratelimit import rate_limit_hit, rate_parse


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("30/hour", (30, 3600)), ("5/minute", (5, 60)), ("10/day", (10, 86400)), ("3/s", (3, 1)), ("5/10m", (5, 600))],
)
def test_rate_parse_reads_count_and_period(rate, expected):
    assert rate_parse(rate) == expected


@pytest.mark.parametrize("rate", ["30", "30/fortnight", "x/hour", "", "/hour"])
def test_rate_parse_refuses_nonsense(rate):
    with pytest.raises(ValueError):
        rate_parse(rate)


def test_hits_within_the_limit_pass_and_the_next_one_is_refused_with_the_wait(monkeypatch):
    monkeypatch.setattr("common.ratelimit.clock", lambda: 7200.0 + 1000.25)

    for _ in range(3):
        rate_limit_hit(scope="test", key="10.0.0.1", rate="3/hour")
    with pytest.raises(RateLimited) as refused:
        rate_limit_hit(scope="test", key="10.0.0.1", rate="3/hour")

    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after == 2600  # until 10800, the end of the window


def test_keys_and_scopes_are_counted_apart():
    rate_limit_hit(scope="test", key="10.0.0.1", rate="1/hour")

    rate_limit_hit(scope="test", key="10.0.0.2", rate="1/hour")
    rate_limit_hit(scope="other", key="10.0.0.1", rate="1/hour")
    with pytest.raises(RateLimited):
        rate_limit_hit(scope="test", key="10.0.0.1", rate="1/hour")


def test_a_new_window_starts_a_new_count(monkeypatch):
    now = [3600.0 * 5 + 10]
    monkeypatch.setattr("common.ratelimit.clock", lambda: now[0])
    rate_limit_hit(scope="test", key="k", rate="1/hour")
    with pytest.raises(RateLimited):
        rate_limit_hit(scope="test", key="k", rate="1/hour")

    now[0] = 3600.0 * 6 + 1
    rate_limit_hit(scope="test", key="k", rate="1/hour")


def test_the_key_is_not_stored_in_clear_and_expires_with_its_window():
    rate_limit_hit(scope="test", key="192.0.2.77", rate="5/minute")

    keys = [key.decode() for key in cache._cache.get_client().keys("*")]
    assert len(keys) == 1
    assert "192.0.2.77" not in keys[0]
    assert 0 < cache._cache.get_client().ttl(keys[0]) <= 65
