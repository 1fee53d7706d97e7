"""The layout's rules that import-linter cannot state by itself: its contract naming the rooms
the tools may not import must name every room of ``host/`` but the harness, or a new room would
be open to the tools without anyone deciding it."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rooms() -> set[str]:
    rooms = set()
    for path in (ROOT / "host").iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            rooms.add(f"host.{path.name}")
        elif path.suffix == ".py" and path.stem not in {"__init__", "harness"}:
            rooms.add(f"host.{path.stem}")
    return rooms


def _contract(name_start: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def test_the_tools_contract_names_every_room_but_the_harness():
    contract = _contract("the tools reach the host only through host.harness")
    assert set(contract["forbidden_modules"]) == _rooms()


def test_the_harness_exists_and_the_tools_import_nothing_else_of_the_host():
    assert (ROOT / "host" / "harness.py").exists()
    offenders = []
    for path in (ROOT / "tools").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("from host", "import host")) and not stripped.startswith(
                "from host.harness import"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
