"""Issue 16 item 12: a normal restart (the demo estate seeded again) is not reported as
failed journal writes (failed_ops=3 at shutdown)."""

from __future__ import annotations

import trio

from host.demo import seed_demo_estate
from host.hsm import SoftClearTestKeys
from host.store import open_store
from keys.hsm import SoftHSM


def test_seeding_the_demo_estate_again_fails_no_journal_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.sqlite'}"
    # the demo estate's test keys, wrapped as a host's start-up wraps them
    hsm = SoftClearTestKeys(SoftHSM(SoftHSM.generate_lmk(32), clear_test_keys=True))

    async def start_once() -> tuple[int, int]:
        async with open_store(url) as store:
            added = await seed_demo_estate(store, hsm)
            return added, store.writer_stats.failed_ops

    first_added, first_failed = trio.run(start_once)
    again_added, again_failed = trio.run(start_once)
    assert first_added > 0 and first_failed == 0
    assert again_added == 0 and again_failed == 0
