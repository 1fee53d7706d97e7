"""The response-code table is the one list: every code the host puts in a Decline, and every
code the README's tables name, is in it; the flags say what the dialect says."""

import pathlib
import re

from codec import responses

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_host_names_its_codes_instead_of_writing_them():
    """Every Decline names its code from the table (codes.X) or passes one along (the issuer's,
    a limit's); a bare literal would be a code nobody checked against the table."""
    bare, named = [], set()
    for path in (ROOT / "host").rglob("*.py"):
        text = path.read_text()
        bare += [(path.name, c) for c in re.findall(r'Decline\(\s*"([0-9A-Z]{2})"', text)]
        named |= set(re.findall(r"Decline\(\s*codes\.([A-Z_0-9]+)", text))
    assert bare == [], bare
    assert named, "the pattern found nothing: the test would prove nothing"
    assert named <= set(responses.BY_NAME), sorted(named - set(responses.BY_NAME))


def test_the_readme_codes_tables_name_only_known_codes():
    named: set[str] = set()
    in_codes_table = False
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("|"):
            in_codes_table = False
        elif line.startswith("| code |"):
            in_codes_table = True
        elif in_codes_table:
            first = line.split("|")[1].strip()
            named |= {c for c in first.split(" / ") if re.fullmatch(r"[0-9A-Z]{2}", c)}
    assert {"00", "77", "91", "98", "A0"} <= named
    assert named <= set(responses.CODES), sorted(named - set(responses.CODES))


def test_sign_on_again_is_what_the_dialect_says():
    flagged = {c.code for c in responses.CODES.values() if c.sign_on_again}
    assert flagged == {"77", "A0"}
    assert responses.MAC_FAILED == "A0" and responses.OUTCOME_UNKNOWN == "98"
    assert responses.meaning("51") == "insufficient funds"
    assert responses.meaning("Z9") == "issuer code Z9"
