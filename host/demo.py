"""Loads the demo estate (specs/demo_estate.toml) so a newcomer can transact at once."""

from __future__ import annotations

import contextlib

import structlog

from host.store.errors import AlreadyExists, NotFound
from host.store.passwords import hash_password
from keys.tokens import KeyType
from specs import demo_estate

log = structlog.get_logger("poshost.demo")


async def seed_demo_estate(store, test_keys) -> int:
    """Adds what is missing; never overwrites an existing merchant or terminal. Each record is
    read before it is written: a refused insert counts as a failed journal write, and a normal
    restart must not report failed_ops=3 at shutdown. ``test_keys`` (host.hsm.ClearTestKeys)
    wraps the estate's published test keys: in process, or on a network HSM."""
    estate = demo_estate()
    added = 0
    for m in estate.get("merchants", []):
        if await _exists(store.get_merchant, m["mid"]):
            continue
        with contextlib.suppress(AlreadyExists):  # another host seeding the same journal
            await store.add_merchant(m["mid"], m["name"], m["mcc"])
            added += 1
    for t in estate.get("terminals", []):
        try:
            await store.get_terminal(t["tid"])
            continue
        except NotFound:
            pass
        tmk = await test_keys.import_test_key(KeyType.TMK, bytes.fromhex(t["tmk_clear_test_key"]))
        bdk = None
        if t.get("bdk_clear_test_key"):
            clear = bytes.fromhex(t["bdk_clear_test_key"])
            bdk = await test_keys.import_test_key(KeyType.BDK, clear)
        await store.add_terminal(t["tid"], t["mid"], t["key_mode"], current_batch=t["batch"])
        await store.set_terminal_keys(
            t["tid"], tmk_token=tmk.to_text(), bdk_token=bdk.to_text() if bdk else None
        )
        added += 1
    for o in estate.get("operators", []):
        if await _exists(store.get_operator, o["tid"], o["operator_no"]):
            continue
        with contextlib.suppress(AlreadyExists):
            await store.add_operator(
                o["tid"], o["operator_no"], hash_password(o["password"]), o["role"]
            )
    if added:
        log.info("demo_estate_loaded", added=added)
    return added


async def _exists(get, *key: str) -> bool:
    try:
        await get(*key)
    except NotFound:
        return False
    return True
