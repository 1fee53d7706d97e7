"""The transaction registry is the one list of transaction types: its facts reproduce what the
host did before it (the sets below are the dialect's rules, written out), and no module of the
host keeps a list of type names of its own (adding a type must not mean hunting for lists)."""

import ast
import pathlib

from codec import txntypes

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_registry_facts_are_the_dialects_rules():
    assert set(txntypes.REVERSIBLE) == {
        "purchase", "void", "preauth", "preauth_cancel", "completion", "completion_void",
        "transfer",
        "qr_pay", "qr_order",  # a QR sale is undone by a cancel at the wallet (docs/qr.md)
    }  # fmt: skip
    assert set(txntypes.DEBITS) == {
        "purchase", "completion", "completion_advice", "transfer", "qr_pay", "qr_order",
    }  # fmt: skip
    assert set(txntypes.QR) == {"qr_pay", "qr_order", "qr_query"}
    assert txntypes.AWAITING_PAYER == ("qr_order",)
    assert "qr_query" not in txntypes.JOURNALLED
    assert set(txntypes.CREDITS) == {"refund"}
    assert {t: txntypes.TYPES[t].undoes for t in txntypes.UNDOING} == {
        "void": "purchase", "preauth_cancel": "preauth", "completion_void": "completion",
    }  # fmt: skip
    assert txntypes.BY_TYPE_CODE == {
        "22": "purchase", "20": "completion", "24": "completion_advice", "25": "refund",
        "47": "transfer", "36": "qr_pay", "37": "qr_order",
    }  # fmt: skip
    # a transfer is a sale for the merchant: risk, velocity and card debit like a purchase
    purchase, transfer = txntypes.TYPES["purchase"], txntypes.TYPES["transfer"]
    assert (transfer.risk, transfer.velocity, transfer.card_debit) == (True, True, True)
    assert (transfer.request_mti, transfer.processing, transfer.condition) == ("0200", "40", "00")
    assert transfer.payee == 48 and purchase.payee is None
    assert {48} == txntypes.PAYEE_FIELDS
    assert "batch_upload_detail" not in txntypes.JOURNALLED
    assert txntypes.sql_list(("purchase", "refund")) == "('purchase', 'refund')"


def _literal_lists_of_type_names(path: pathlib.Path) -> list[int]:
    names = set(txntypes.TYPES)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = node.elts
        elif isinstance(node, ast.Dict):  # a table keyed by type (the flow table) is fine
            items = node.values
        else:
            continue
        strings = [e.value for e in items if isinstance(e, ast.Constant)]
        if sum(isinstance(v, str) and v in names for v in strings) >= 2:
            found.append(node.lineno)
    return found


# The issuer simulator stays an independent peer on purpose: it classifies requests from the
# issuer dialect itself, so a wrong registry row shows up as a disagreement, not as agreement.
# The certification runner's SEND_KINDS is what the runner implements, not a fact of a type.
NOT_SCANNED = ("tools/issuer_sim", "tools/soak")
KNOWN = {"tools/certify/suite.py": [55]}


def test_no_module_keeps_its_own_list_of_type_names():
    offenders = {
        rel: lines
        for folder in ("host", "codec", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not (rel := str(path.relative_to(ROOT))).startswith(NOT_SCANNED)
        if (lines := _literal_lists_of_type_names(path))
    }
    assert offenders == KNOWN, offenders


def test_the_scan_would_see_a_list():
    probe = ROOT / "tests" / "codec" / "test_registry.py"
    assert _literal_lists_of_type_names(probe), "the scan finds the lists of this very file"
