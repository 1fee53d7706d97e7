"""Back-office tokens under attack, over the API's real socket: digests instead of scrypt, one
answer for an unknown id and a wrong secret, throttles per address and per token id, revocation
and expiry at the next request, legacy scrypt rows, and the API in its own process of `serve`."""

import datetime as dt
import hashlib
import json
import re
import time

import pytest
import trio
from click.testing import CliRunner

from host.backoffice import api
from host.backoffice.api import serve_backoffice
from host.backoffice.tokens import FailureLimiter, legacy_hash, new_token, parse_expiry
from host.cli import main
from host.security import SecurityMonitor
from host.store import SyncStore, open_store
from tests.host.harness import host_settings, running_host
from tests.ops.test_backoffice import http

SHOP, HOTEL = "123456789012345", "123456789012346"
WRONG = "0123456789abcdef" * 2


def _estate(url: str) -> None:
    with SyncStore.open(url) as store:
        store.add_merchant(SHOP, "Shop", "5411")
        store.add_merchant(HOTEL, "Hotel", "7011")


def _issue(store, mid: str, **kwargs) -> str:
    secret, hashed = new_token()
    return f"pht_{store.add_api_token(mid, hashed, 'test', **kwargs)}_{secret}"


def _estate_cli(url: str, *args: str):
    return CliRunner().invoke(main, ["estate", "--journal", url, *args], env={})


async def _serving(nursery, store, **kwargs) -> int:
    return await nursery.start(
        lambda task_status: serve_backoffice(
            store, "127.0.0.1:0", task_status=task_status, **kwargs
        )
    )


def test_tokens_are_stored_as_sha256_digests_not_scrypt(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    r = _estate_cli(url, "token", "issue", SHOP, "--label", "office")
    assert r.exit_code == 0, r.output
    secret = r.output.strip().split("_")[2]
    with SyncStore.open(url) as store:
        (row,) = store.list_api_tokens(SHOP)
    assert row.token_hash == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.token_hash and not row.token_hash.startswith("scrypt$")


def test_unknown_id_and_wrong_secret_get_the_same_answer_for_the_same_work(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    with SyncStore.open(url) as sync:
        token = _issue(sync, SHOP)
    token_id = token.split("_")[1]
    checks = []
    real = api.digest_matches
    monkeypatch.setattr(api, "digest_matches", lambda *a: checks.append(a) or real(*a))

    async def scenario():
        async with open_store(url) as store, trio.open_nursery() as nursery:
            port = await _serving(nursery, store)
            path = f"/v1/merchants/{SHOP}/transactions"
            assert (await http(port, path, token))[0] == 200
            checks.clear()
            wrong = await http(port, path, f"pht_{token_id}_{WRONG}")
            unknown = await http(port, path, f"pht_999999_{WRONG}")
            nursery.cancel_scope.cancel()
        assert wrong[0] == unknown[0] == 401
        assert wrong[2] == unknown[2] == b'{"error":"invalid token"}'
        assert wrong[1] == unknown[1]
        assert len(checks) == 2  # one digest comparison each, the unknown id included

    trio.run(scenario)


def test_failures_are_throttled_per_address_and_per_token_id(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    with SyncStore.open(url) as sync:
        shop, hotel, spare = _issue(sync, SHOP), _issue(sync, HOTEL), _issue(sync, SHOP)
    shop_id, spare_id = shop.split("_")[1], spare.split("_")[1]
    base = f"/v1/merchants/{SHOP}/transactions"

    async def scenario():
        async with open_store(url) as store, trio.open_nursery() as nursery:
            monitor = SecurityMonitor(store)
            port = await _serving(
                nursery, store, monitor=monitor, fail_burst=3, fail_refill_seconds=600
            )
            attacker = "127.0.0.2"
            for _ in range(3):
                assert (await http(port, base, f"pht_{shop_id}_{WRONG}", source=attacker))[0] == 401
            status, head, body = await http(port, base, f"pht_{shop_id}_{WRONG}", source=attacker)
            assert status == 429 and 1 <= int(head["retry-after"]) <= 600
            assert json.loads(body) == {"error": "too many failed attempts"}
            # the address is throttled whatever it sends, a valid token included
            hotel_base = f"/v1/merchants/{HOTEL}/transactions"
            assert (await http(port, hotel_base, hotel, source=attacker))[0] == 429
            # the shop's token id is throttled from any address, its own secret included
            assert (await http(port, base, shop, source="127.0.0.3"))[0] == 429
            # a valid token from another address works
            assert (await http(port, hotel_base, hotel, source="127.0.0.3"))[0] == 200
            # per token id: three addresses, one failure each, then the id is closed
            for n in (10, 11, 12):
                wrong = f"pht_{spare_id}_{WRONG}"
                assert (await http(port, base, wrong, source=f"127.0.0.{n}"))[0] == 401
            assert (await http(port, base, spare, source="127.0.0.13"))[0] == 429
            assert monitor.counts["api_token_refused"] == 6
            assert monitor.counts["api_throttled"] == 4
            await monitor.flush()
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    r = CliRunner().invoke(main, ["risk", "--journal", url, "security-events", "--json"], env={})
    rows = json.loads(r.output)
    by_peer = {(e["kind"], e["peer"]): e["count"] for e in rows}
    assert by_peer[("api_token_refused", "127.0.0.2")] == 3
    assert by_peer[("api_throttled", "127.0.0.2")] == 2
    assert by_peer[("api_throttled", "127.0.0.3")] == 1


def test_a_legacy_scrypt_token_works_once_slowly_then_as_a_digest(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    secret = "5c0f" * 8
    with SyncStore.open(url) as sync:
        token_id = sync.add_api_token(SHOP, legacy_hash(secret), "old")
    token = f"pht_{token_id}_{secret}"
    path = f"/v1/merchants/{SHOP}/settlements"

    async def scenario():
        async with open_store(url) as store, trio.open_nursery() as nursery:
            port = await _serving(nursery, store)
            assert (await http(port, path, f"pht_{token_id}_{WRONG}"))[0] == 401
            assert (await store.get_api_token(token_id)).token_hash.startswith("scrypt$")
            assert (await http(port, path, token))[0] == 200
            stored = (await store.get_api_token(token_id)).token_hash
            assert stored == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
            assert (await http(port, path, token))[0] == 200
            assert (await http(port, path, f"pht_{token_id}_{WRONG}"))[0] == 401
            nursery.cancel_scope.cancel()

    trio.run(scenario)


def test_queued_legacy_checks_stop_at_the_token_id_burst(tmp_path):
    """Wrong secrets for a legacy (scrypt) token sent together from many addresses: scrypt runs
    at most ``fail_burst`` times, the rest get 429 once their turn comes."""
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    with SyncStore.open(url) as sync:
        token_id = sync.add_api_token(SHOP, legacy_hash("5c0f" * 8), "old")
    path = f"/v1/merchants/{SHOP}/settlements"
    statuses = []

    async def scenario():
        async with open_store(url) as store, trio.open_nursery() as nursery:
            port = await _serving(nursery, store, fail_burst=2, fail_refill_seconds=600)

            async def guess(n):
                wrong = f"pht_{token_id}_{WRONG}"
                statuses.append((await http(port, path, wrong, source=f"127.0.1.{n}"))[0])

            async with trio.open_nursery() as attackers:
                for n in range(1, 9):
                    attackers.start_soon(guess, n)
            nursery.cancel_scope.cancel()

    trio.run(scenario)
    assert sorted(statuses) == [401, 401] + [429] * 6


def test_serve_runs_the_api_in_its_own_process_where_revocation_and_expiry_act_at_once(
    tmp_path,
):
    settings = host_settings(tmp_path, 9, **{"backoffice.listen": "127.0.0.1:0"})
    url = settings.journal_url
    path = f"/v1/merchants/{SHOP}/transactions"

    async def scenario():
        async with running_host(settings) as running:
            child = running.backoffice
            assert child is not None and child.proc.poll() is None
            port = child.port
            issued = await trio.to_thread.run_sync(
                _estate_cli, url, "token", "issue", SHOP, "--expires", "30d"
            )
            # (the host's own log lines may land in the captured output too)
            token = re.search(r"pht_\d+_[0-9a-f]{32}", issued.output).group()
            assert (await http(port, path, token))[0] == 200
            revoked = await trio.to_thread.run_sync(
                _estate_cli, url, "token", "revoke", token.split("_")[1]
            )
            assert revoked.exit_code == 0
            status, _, body = await http(port, path, token)
            assert (status, json.loads(body)) == (401, {"error": "token revoked"})
            # expiry: a token past its time is refused
            with SyncStore.open(url) as sync:
                expired = _issue(sync, SHOP, expires_at=int(time.time() * 1000) - 1)
            status, _, body = await http(port, path, expired)
            assert (status, json.loads(body)) == (401, {"error": "token expired"})
        return child

    child = trio.run(scenario)
    assert child.proc.returncode == 0  # stopped with the host, cleanly
    listing = _estate_cli(url, "token", "list").output
    assert "revoked" in listing and "expired" in listing
    in_30_days = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date().isoformat()
    assert in_30_days in listing
    with SyncStore.open(url) as sync:  # the child's security monitor journalled its events
        (row,) = sync.list_security_events(kind="api_token_refused")
    assert row.count == 2 and row.peer == "127.0.0.1"


def test_token_issue_refuses_a_bad_or_past_expiry(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"
    _estate(url)
    assert _estate_cli(url, "token", "issue", SHOP, "--expires", "2020-01-01").exit_code != 0
    assert _estate_cli(url, "token", "issue", SHOP, "--expires", "soon").exit_code != 0
    assert _estate_cli(url, "token", "issue", SHOP, "--expires", "2099-12-31").exit_code == 0
    with SyncStore.open(url) as store:
        (row,) = store.list_api_tokens(SHOP)
    assert row.expires_at == int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def test_expiry_text():
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_expiry("30d", now) == now + dt.timedelta(days=30)
    assert parse_expiry("12h", now) == now + dt.timedelta(hours=12)
    assert parse_expiry("2026-12-31", now) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert parse_expiry("2026-12-31T08:00:00+08:00", now) == dt.datetime(
        2026, 12, 31, 0, 0, tzinfo=dt.UTC
    )
    with pytest.raises(ValueError):
        parse_expiry("tomorrow", now)


def test_failure_bucket_refills_and_stays_bounded():
    limiter = FailureLimiter(burst=2, refill_seconds=10.0, max_keys=100)
    limiter.failed("a", 0.0)
    assert limiter.retry_after("a", 0.0) == 0
    limiter.failed("a", 0.0)
    assert limiter.retry_after("a", 0.0) == 10
    assert limiter.retry_after("a", 5.0) == 5
    assert limiter.retry_after("a", 10.0) == 0
    assert limiter.retry_after("b", 0.0) == 0
    for n in range(1000):
        limiter.failed(n, 100.0 + n)
    assert len(limiter._buckets) <= 100
