"""The security monitor: events are counted, logged once per (kind, peer, terminal) and
interval, and land in the journal as one counted row each; `poshost risk security-events`
lists them."""

import json

import trio
from click.testing import CliRunner

from host.cli import main
from host.security import MAX_KEYS_PER_INTERVAL, SecurityMonitor, peer_address
from host.store import open_store


def test_peer_address_drops_the_port():
    assert peer_address("10.1.2.3:5555") == "10.1.2.3"
    assert peer_address("[::1]:5555") == "::1"
    assert peer_address("::1") == "::1"
    assert peer_address(None) is None


def test_a_flood_is_one_row_with_a_count(tmp_path, capsys):
    monitor = SecurityMonitor()
    for port in range(500):
        monitor.record("connection_limit", peer=f"127.0.0.9:{40000 + port}", detail="limit 50")
    monitor.record("sign_on_refused", peer="127.0.0.9:1", tid="12345678", detail="rate")
    rows = monitor.take()
    by_kind = {r["kind"]: r for r in rows}
    assert by_kind["connection_limit"]["count"] == 500
    assert by_kind["connection_limit"]["peer"] == "127.0.0.9"
    assert by_kind["sign_on_refused"]["tid"] == "12345678"
    assert monitor.counts["connection_limit"] == 500
    assert monitor.take() == []  # a fresh interval


def test_distinct_keys_per_interval_are_bounded():
    monitor = SecurityMonitor()
    for n in range(MAX_KEYS_PER_INTERVAL + 50):
        monitor.record("bad_frame", peer=f"10.0.{n // 250}.{n % 250}:1")
    rows = monitor.take()
    assert len(rows) == MAX_KEYS_PER_INTERVAL + 1
    assert rows[-1]["kind"] == "overflow" and rows[-1]["count"] == 50


def test_rows_reach_the_journal_and_the_cli(tmp_path):
    url = f"sqlite:///{tmp_path}/j.sqlite"

    async def scenario():
        async with open_store(url) as store:
            monitor = SecurityMonitor(store)
            for _ in range(3):
                monitor.record("token_refused", peer="127.0.0.5:80", detail="wrong secret")
            assert await monitor.flush() == 1

    trio.run(scenario)
    r = CliRunner().invoke(main, ["risk", "--journal", url, "security-events", "--json"], env={})
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    assert (row["kind"], row["peer"], row["count"]) == ("token_refused", "127.0.0.5", 3)
    r = CliRunner().invoke(
        main, ["risk", "--journal", url, "security-events", "--kind", "nothing"], env={}
    )
    assert r.exit_code == 0 and "token_refused" not in r.output
