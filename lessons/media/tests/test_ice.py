"""Time-limited TURN credentials in coturn's REST shared-secret scheme."""

import base64
import hashlib
import hmac

import pytest

from lessons.media.ice import client_ice_servers, ice_servers, turn_credentials, worker_ice_servers


def test_credentials_match_coturns_scheme():
    # Expected password computed independently:
    #   printf '%s' "1700003600:peer-42" | openssl dgst -binary -sha1 -hmac "s3cret-shared" | base64
    credentials = turn_credentials(secret="s3cret-shared", user_id="peer-42", ttl_seconds=3600, now=1700000000.7)
    assert credentials.username == "1700003600:peer-42"
    assert credentials.password == "Fy+hXoFK7+kPGfLZnNlYWnIGnO4="
    assert credentials.expires_at == 1700003600


def test_a_second_vector():
    # printf '%s' "1433895918:alice" | openssl dgst -binary -sha1 -hmac "north" | base64
    credentials = turn_credentials(secret="north", user_id="alice", ttl_seconds=18, now=1433895900)
    assert credentials.password == "RqMvcGPYTJMGThVLSi4amT4zFtI="


def test_the_password_is_hmac_sha1_of_the_username():
    credentials = turn_credentials(secret="другой секрет", user_id="u1", ttl_seconds=60, now=0)
    digest = hmac.new("другой секрет".encode(), b"60:u1", hashlib.sha1).digest()
    assert credentials.password == base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("secret", "user_id", "ttl"),
    [("", "u1", 60), ("s", "with:colon", 60), ("s", "with space", 60), ("s", "", 60), ("s", "u1", 0)],
)
def test_bad_input_is_refused(secret, user_id, ttl):
    with pytest.raises(ValueError):
        turn_credentials(secret=secret, user_id=user_id, ttl_seconds=ttl, now=0)


def test_ice_servers_for_a_browser():
    servers = ice_servers(
        stun_urls=["stun:stun.example.org:3478"],
        turn_urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
        turn_secret="north",
        ttl_seconds=18,
        user_id="alice",
        now=1433895900,
    )
    assert servers == [
        {"urls": ["stun:stun.example.org:3478"]},
        {
            "urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
            "username": "1433895918:alice",
            "credential": "RqMvcGPYTJMGThVLSi4amT4zFtI=",
        },
    ]


def test_no_turn_without_a_secret_and_nothing_without_urls():
    assert ice_servers(stun_urls=[], turn_urls=["turn:t"], turn_secret="", ttl_seconds=60, user_id="u", now=0) == []
    assert ice_servers(stun_urls=[], turn_urls=[], turn_secret="s", ttl_seconds=60, user_id="u", now=0) == []


def test_servers_from_settings(settings):
    settings.STUN_URLS = ["stun:stun.example.org"]
    settings.TURN_URLS = ["turn:turn.example.org"]
    settings.TURN_SHARED_SECRET = "north"
    settings.TURN_CREDENTIAL_TTL_SECONDS = 600
    stun, turn = client_ice_servers(user_id="peer-1")
    assert stun == {"urls": ["stun:stun.example.org"]}
    expires, user = turn["username"].split(":")
    assert user == "peer-1"
    assert (
        turn["credential"]
        == base64.b64encode(hmac.new(b"north", turn["username"].encode(), hashlib.sha1).digest()).decode()
    )
    assert int(expires) > 0
    # The worker itself uses STUN only.
    assert worker_ice_servers() == [{"urls": ["stun:stun.example.org"]}]
    settings.STUN_URLS = []
    assert worker_ice_servers() == []
