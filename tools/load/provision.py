"""Load terminals in a host's estate: ``LT000001`` ... with one TEST TMK, under the demo
merchant. Writes straight into the host's journal database with the host's LMK (an operator
task, like ``poshost estate``); run it once before a load of more than the demo terminals."""

from __future__ import annotations

from host.harness import AlreadyExists, NotFound, Settings, SyncStore, load_lmk
from keys.hsm import SoftHSM
from keys.tokens import KeyType
from tools.load.engine import TerminalSpec

LOAD_TMK = "0123456789ABCDEFFEDCBA9876543210"  # TEST ONLY: every load terminal shares it
LOAD_MID = "123456789012345"  # the demo shop (specs/demo_estate.toml)


def load_terminal_ids(count: int, prefix: str = "LT") -> list[str]:
    return [f"{prefix}{i:06d}" for i in range(1, count + 1)]


def specs(count: int, prefix: str = "LT", tmk: str = LOAD_TMK) -> list[TerminalSpec]:
    return [TerminalSpec(tid, LOAD_MID, tmk, "003") for tid in load_terminal_ids(count, prefix)]


def provision(settings: Settings, count: int, prefix: str = "LT", tmk: str = LOAD_TMK) -> int:
    """Add the missing load terminals; returns how many were added."""
    lmk, _ = load_lmk(settings)
    hsm = SoftHSM(lmk, clear_test_keys=True)  # load terminals share a published test TMK
    added = 0
    with SyncStore.open(settings.journal_url) as store:
        try:
            store.get_merchant(LOAD_MID)
        except NotFound:
            store.add_merchant(LOAD_MID, "POSHOST DEMO SHOP", "5411")
        token = hsm.import_clear(KeyType.TMK, bytes.fromhex(tmk)).to_text()
        for tid in load_terminal_ids(count, prefix):
            try:
                store.add_terminal(tid, LOAD_MID, "003", current_batch="000001")
            except AlreadyExists:
                continue
            store.set_terminal_keys(tid, tmk_token=token)
            added += 1
    return added
