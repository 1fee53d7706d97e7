"""Certification terminals of its own for ``certify --host``: a twin of each demo terminal a
suite names (same merchant, key mode, TEST TMK/BDK and operators) under a TID starting with C,
so a certification run never re-keys the demo terminals or spends their STANs under the
emulator (which then saw wrong MACs and 94s)."""

from __future__ import annotations

import contextlib

from host.harness import AlreadyExists, NotFound, Settings, SyncStore, hash_password, load_lmk
from keys.hsm import SoftHSM
from keys.tokens import KeyType
from specs import demo_estate

PREFIX = "C"


def twin_tid(tid: str) -> str:
    """12345678 -> C2345678: eight characters, and plainly not a demo terminal."""
    return PREFIX + tid[1:]


def provision(settings: Settings, tids: set[str]) -> int:
    """Add the missing twins of these demo terminals; returns how many were added."""
    hsm = SoftHSM(load_lmk(settings)[0], clear_test_keys=True)  # the twins take published test TMKs
    estate = demo_estate()
    added = 0
    with SyncStore.open(settings.journal_url) as store:
        for m in estate.get("merchants", []):
            with contextlib.suppress(AlreadyExists):
                store.add_merchant(m["mid"], m["name"], m["mcc"])
        for t in estate["terminals"]:
            if t["tid"] in tids and _add_twin(store, hsm, t):
                added += 1
        for o in estate.get("operators", []):
            if o["tid"] in tids:
                with contextlib.suppress(AlreadyExists):
                    store.add_operator(twin_tid(o["tid"]), o["operator_no"],
                                       hash_password(o["password"]), o["role"])  # fmt: skip
    return added


def _add_twin(store: SyncStore, hsm: SoftHSM, t: dict) -> bool:
    tid = twin_tid(t["tid"])
    with contextlib.suppress(NotFound):
        store.get_terminal(tid)
        return False  # there already
    tmk = hsm.import_clear(KeyType.TMK, bytes.fromhex(t["tmk_clear_test_key"]))
    bdk = None
    if t.get("bdk_clear_test_key"):
        bdk = hsm.import_clear(KeyType.BDK, bytes.fromhex(t["bdk_clear_test_key"]))
    store.add_terminal(tid, t["mid"], t["key_mode"], current_batch=t["batch"])
    store.set_terminal_keys(tid, tmk_token=tmk.to_text(), bdk_token=bdk.to_text() if bdk else None)
    return True


def suite_tids(suites) -> set[str]:
    """The demo TIDs the suites' cases run on (cases with their own ``tid`` keep it)."""
    return {c.profile.partition(":")[2] for s in suites for c in s.cases if not c.tid}


def own_terminals(suites) -> dict[str, str]:
    """Provision certify's twins in the journal of the host the root --config describes and
    return demo TID -> twin TID. No journal there: say so (exit 4) rather than create one."""
    from host.harness import configured_host_with_journal

    settings = configured_host_with_journal(
        "certify adds its own terminals to the host's journal: give `poshost --config FILE`, "
        "or --demo-terminals to run on the demo terminals"
    )
    tids = suite_tids(suites)
    provision(settings, tids)
    return {tid: twin_tid(tid) for tid in tids}
