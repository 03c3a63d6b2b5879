"""D6 of issue 11: the login limiter is atomic and cannot be turned against an account's owner.

Against the app served for real (its own committed database, real concurrent connections),
client addresses given as X-Forwarded-For the way nginx sends them."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from gridgov.auth.models import LoginAttempt
from gridgov.config import get_settings
from tests.fixtures.served import serve_world
from tests.fixtures.world import PASSWORD


@pytest.fixture(scope="module")
def served(template_db: str) -> Iterator:
    with serve_world(template_db) as served:
        yield served


def _login(address: str, username: str, password: str, client: str) -> httpx.Response:
    return httpx.post(
        f"http://{address}/api/v1/auth/token",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": client},
        timeout=60,
    )


def _failures(makers, username: str) -> int:
    with makers() as s:
        return s.scalar(
            select(func.count()).where(LoginAttempt.username == username, ~LoginAttempt.success)
        )


def test_30_concurrent_wrong_passwords_check_at_most_the_limit(served):
    address, world, makers = served
    limit = get_settings().auth.login_max_failures
    attacker = "203.0.113.7"
    statuses: list[int] = []
    barrier = threading.Barrier(30)

    def guess(i: int) -> None:
        barrier.wait()
        statuses.append(_login(address, "village_a", f"guess-{i}", attacker).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = Counter(statuses)
    assert counted == {401: limit, 429: 30 - limit}, counted
    assert _failures(makers, "village_a") == limit  # the refused ones were never checked

    # The attacker's address is stopped, the right password included …
    r = _login(address, "village_a", PASSWORD, attacker)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= get_settings().auth.login_window_seconds
    # … but the owner, from another address, logs in.
    r = _login(address, "village_a", PASSWORD, "198.51.100.20")
    assert r.status_code == 200, r.text
    assert r.json()["access_token"]


def test_many_addresses_cannot_lock_the_owner_out(served):
    """A distributed guesser passes the per-username ceiling: new addresses back off, the
    owner's known address logs in at once."""
    address, world, makers = served
    ceiling = get_settings().auth.login_user_max_failures
    owner = "198.51.100.30"
    assert _login(address, "village_b", PASSWORD, owner).status_code == 200  # known from now on
    for i in range(ceiling + 2):
        r = _login(address, "village_b", "wrong", f"192.0.2.{i + 1}")
        assert r.status_code in (401, 429), r.text
    newcomer = _login(address, "village_b", PASSWORD, "192.0.2.250")
    assert newcomer.status_code == 429, newcomer.text
    assert newcomer.json()["code"] == "rate_limited"
    assert int(newcomer.headers["retry-after"]) >= 1
    r = _login(address, "village_b", PASSWORD, owner)
    assert r.status_code == 200, r.text


def test_a_success_clears_the_addresses_failures(served):
    address, world, makers = served
    limit = get_settings().auth.login_max_failures
    client = f"10.9.{uuid.uuid4().int % 250}.1"
    for _ in range(limit - 1):
        assert _login(address, "town_a", "wrong", client).status_code == 401
    assert _login(address, "town_a", PASSWORD, client).status_code == 200
    for _ in range(limit - 1):  # a fresh allowance after the success
        assert _login(address, "town_a", "wrong", client).status_code == 401
    assert _login(address, "town_a", PASSWORD, client).status_code == 200
