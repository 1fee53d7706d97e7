"""The back-office API over a real socket, against a journal filled by the real host and
issuer simulator, on both backends: authentication, merchant isolation, filters, files."""

import json

import h11
import trio

from host.backoffice.api import new_token, serve_backoffice
from host.clock import parse_date
from host.config import load_settings
from host.merchant.settlement import run_settlement
from host.store import SyncStore
from tests.host.flowkit import PIN, RICH, original, run, shop
from tests.host.harness import demo_device, terminal

SHOP, HOTEL = "123456789012345", "123456789012346"
NOBODY = "999999999999999"


async def http(port, path, token=None, method="GET", source=None):
    """One request; ``source`` picks the client's address (any 127.x.y.z on loopback)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    conn = h11.Connection(h11.CLIENT)
    headers = [("host", "backoffice"), ("connection", "close")]
    if token:
        headers.append(("authorization", f"Bearer {token}"))
    await stream.send_all(conn.send(h11.Request(method=method, target=path, headers=headers)))
    await stream.send_all(conn.send(h11.EndOfMessage()))
    status, head, body = None, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            head = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    await stream.aclose()
    return status, head, body


async def _token(store, mid):
    secret, hashed = new_token()
    return f"pht_{await store.add_api_token(mid, hashed, 'test')}_{secret}"


def test_backoffice_api(tmp_path, journal_url):
    async def body():
        async with shop(tmp_path, **{"journal.url": journal_url}) as s:
            await s.store.set_risk_limits("merchant", SHOP, {"max_amount": 50_000})
            sale1 = await s.sale(1_000)
            await s.sale(2_000)
            voided = await s.sale(3_000)
            void = await s.txn("void", pan=RICH, amount=3_000, pin=PIN, extra=original(voided))
            assert void[39] == "00"
            assert (await s.txn("purchase", pan=RICH, amount=60_000, pin=PIN))[39] == "61"
            async with terminal(s.running, demo_device("12345680")) as hotel:
                req = hotel.device.financial_request("purchase", pan=RICH, amount=7_700, pin=PIN)
                assert (await hotel.exchange(req))[0][39] == "00"
            date = str(sale1[15])
            business_date = f"2025{date}"

            def settle():
                with SyncStore.open(journal_url) as sync:
                    day = parse_date(business_date)
                    return run_settlement(sync, load_settings(environ={}), day)

            assert len(await trio.to_thread.run_sync(settle)) == 2
            shop_token = await _token(s.store, SHOP)
            hotel_token = await _token(s.store, HOTEL)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_backoffice, s.store, "127.0.0.1:0")
                await _checks(port, shop_token, hotel_token, business_date, s)
                nursery.cancel_scope.cancel()

    run(body, timeout=60)


async def _checks(port, shop_token, hotel_token, date, s):
    base = f"/v1/merchants/{SHOP}"
    status, head, body = await http(port, "/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.")
    # authentication
    assert (await http(port, f"{base}/transactions"))[0] == 401
    assert (await http(port, f"{base}/transactions", "pht_1_" + "0" * 32))[0] == 401
    assert (await http(port, f"{base}/transactions", "nonsense"))[0] == 401
    # the shop's own data
    status, head, body = await http(port, f"{base}/transactions", shop_token)
    assert status == 200, body
    rows = json.loads(body)["transactions"]
    assert {r["mid"] for r in rows} == {SHOP} and len(rows) == 4  # 3 sales + 1 void
    assert all(r["pan_masked"] == "622202******0001" for r in rows)
    assert not any("fingerprint" in k or k == "extra" for r in rows for k in r)
    assert RICH.encode() not in body

    # filters
    async def count(query):
        status, _, body = await http(port, f"{base}/transactions?{query}", shop_token)
        assert status == 200, body
        return [r["amount"] for r in json.loads(body)["transactions"]]

    assert await count("status=voided") == [3_000]
    assert sorted(await count("type=purchase")) == [1_000, 2_000, 3_000]
    assert await count("terminal=12345679") == []
    assert len(await count(f"date={date}")) == 4
    assert await count("date=20250101") == []
    rrn = rows[-1]["rrn"]
    assert await count(f"rrn={rrn}") == [rows[-1]["amount"]]
    assert await count("limit=1") == [rows[0]["amount"]]
    assert (await http(port, f"{base}/transactions?date=2025-03-10", shop_token))[0] == 400
    assert (await http(port, f"{base}/transactions?mid={HOTEL}", shop_token))[0] == 400
    assert (await http(port, f"{base}/transactions?status=odd", shop_token))[0] == 400
    # settlement records, files, risk events
    status, _, body = await http(port, f"{base}/settlements", shop_token)
    (record,) = json.loads(body)["settlements"]
    assert (record["gross"], record["fee"], record["net"]) == (3_000, 18, 2_982)
    status, head, body = await http(port, f"{base}/recon/{date}/transactions.csv", shop_token)
    assert status == 200 and head["content-type"].startswith("text/csv")
    assert f'filename="{date}_{SHOP}_transactions.csv"' in head["content-disposition"]
    lines = body.decode().splitlines()
    assert len(lines) == 3 and lines[0].startswith("business_date,mid,tid")
    status, _, body = await http(port, f"{base}/recon/{date}/settlement.csv", shop_token)
    assert status == 200 and ",3000,0.60,18,2982," in body.decode()
    assert (await http(port, f"{base}/recon/20250101/settlement.csv", shop_token))[0] == 404
    status, _, body = await http(port, f"{base}/risk-events", shop_token)
    (event,) = json.loads(body)["risk_events"]
    assert (event["rule"], event["amount"], event["response_code"]) == ("max_amount", 60_000, "61")
    # isolation: the shop's token never reaches the hotel's data, and vice versa
    nothing = await http(port, f"/v1/merchants/{NOBODY}/transactions", shop_token)
    assert nothing[0] == 404
    for path in ("transactions", "settlements", f"recon/{date}/transactions.csv",
                 f"recon/{date}/settlement.csv", "risk-events"):  # fmt: skip
        other = await http(port, f"/v1/merchants/{HOTEL}/{path}", shop_token)
        assert other[0] == 404 and other[2] == nothing[2], path
        mine = await http(port, f"/v1/merchants/{HOTEL}/{path}", hotel_token)
        assert mine[0] == 200, (path, mine)
        assert SHOP.encode() not in mine[2]
        back = await http(port, f"{base}/{path}", hotel_token)
        assert back[0] == 404
    status, _, body = await http(port, f"/v1/merchants/{HOTEL}/transactions", hotel_token)
    assert [r["amount"] for r in json.loads(body)["transactions"]] == [7_700]
    # read-only, and a revoked token stops working at its next request
    assert (await http(port, f"{base}/transactions", shop_token, method="POST"))[0] == 405
    token_id = int(hotel_token.split("_")[1])
    await s.store.revoke_api_token(token_id)
    refused = await http(port, f"/v1/merchants/{HOTEL}/settlements", hotel_token)
    assert refused[0] == 401 and json.loads(refused[2]) == {"error": "token revoked"}
