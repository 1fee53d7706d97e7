"""The certification runner's hands on wallet-sim (QR suite): it talks to the simulator's
control endpoint over HTTP, as an operator would, whether the simulator runs in this process
(``poshost certify`` without --host) or elsewhere (``--wallet-control HOST:PORT``)."""

from __future__ import annotations

from typing import Any

import httpx
import trio


class WalletControl:
    def __init__(self, address: str):
        self.base = f"http://{address}"

    async def _call(self, method: str, path: str, data: dict | None = None) -> tuple[int, Any]:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as client:
            resp = await client.request(method, path, json=data)
        return resp.status_code, resp.json()

    async def code(self, user: str) -> str:
        status, data = await self._call("POST", f"/users/{user}/code")
        if status != 200:
            raise ValueError(f"wallet-sim: no code for {user!r}: {data}")
        return str(data["code"])

    async def expired_code(self, user: str) -> str:
        """A code issued under a very short validity, then left to expire."""
        _, saved = await self._call("GET", "/settings")
        await self._call("PUT", "/settings", {"code_ttl": 0.05})
        try:
            code = await self.code(user)
        finally:
            await self._call("PUT", "/settings", {"code_ttl": saved["code_ttl"]})
        await trio.sleep(0.2)
        return code

    async def balance(self, user: str) -> int:
        _, users = await self._call("GET", "/users")
        return next(int(u["balance"]) for u in users if u["id"] == user)

    async def confirm(self, user: str) -> bool:
        status, _ = await self._call("POST", "/confirm", {"user": user})
        return status == 200

    async def pay(self, qr: str, user: str) -> str:
        _, data = await self._call("POST", "/pay", {"qr": qr, "user": user})
        return str(data.get("result"))

    async def settings(self, changes: dict | None = None) -> dict:
        if changes:
            _, data = await self._call("PUT", "/settings", changes)
        else:
            _, data = await self._call("GET", "/settings")
        return data
