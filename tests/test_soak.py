"""A short soak: the real `poshost serve` and `poshost issuer-sim` as separate processes,
purchases from three terminals, fuzzed frames, an idle flood from 127.0.0.2, back-office token
guessing, a host SIGKILL + restart and an issuer SIGKILL + restart with purchases in flight;
afterwards the journal and the issuer's ledger must agree on every purchase."""

import pytest

from tools.soak.report import lines
from tools.soak.run import SoakConfig, run_soak


@pytest.mark.slow
def test_short_soak_keeps_journal_and_issuer_in_agreement(tmp_path):
    config = SoakConfig(
        seconds=12,
        quiet=3,
        attacks=("fuzz", "flood", "host-kill", "issuer-kill", "backoffice"),
        fuzz_interval=0.1,
        flood_every=6,
        flood_size=100,
        flood_hold=2,
        host_kill_every=4.5,
        issuer_kill_every=3.5,
        backoffice_interval=0.1,
        drain_timeout=20,
        out=tmp_path,
    )
    result = run_soak(config)
    print("\n".join(lines(result)))
    t = result.tally
    assert t.host_kills >= 1 and t.host_own_deaths == 0
    assert t.issuer_kills >= 1 and t.issuer_own_deaths == 0
    assert t.purchases["00"] > 20, "purchases went through"
    assert t.latency_quiet and t.latency_attack
    assert sum(v for k, v in t.fuzz.items() if k.startswith("sent ")) > 50
    assert t.flood["opened"] >= 100
    assert t.backoffice["sent wrong token"] > 10
    assert t.backoffice["wrong token -> 200"] == 0, "a guessed token was let in"
    assert t.backoffice["real token -> 200"] >= 1, "the API served its merchant meanwhile"
    assert result.pending_left == 0 and result.saf_left == 0
    # every approval a terminal saw stands (the journal may hold more: answers lost in a kill)
    assert result.journal["approved"] >= t.purchases["00"]
    assert result.mismatches == []
