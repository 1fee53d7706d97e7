"""`make soak` / `python -m tools.soak [--seconds N]`: see docs/soak.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.soak.report import lines
from tools.soak.run import ALL_ATTACKS, SoakConfig, run_soak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__)
    ap.add_argument("--seconds", type=float, default=SoakConfig().seconds)
    ap.add_argument("--attacks", default=",".join(ALL_ATTACKS), help="comma-separated subset")
    ap.add_argument("--out", type=Path, help="directory for the programs' logs and data")
    args = ap.parse_args(argv)
    chosen = tuple(a for a in args.attacks.split(",") if a)
    unknown = set(chosen) - set(ALL_ATTACKS)
    if unknown:
        ap.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    config = scaled(args.seconds, chosen, args.out)
    print(f"soak: {config.seconds:.0f} s ({config.quiet:.0f} s quiet), attacks: "
          f"{', '.join(chosen) or 'none'}", flush=True)  # fmt: skip
    result = run_soak(config)
    print("\n".join(lines(result)))
    if result.mismatches:
        print("FAIL: the journal and the issuer disagree")
    if result.tally.host_own_deaths:
        print("FAIL: the host died on its own")
    return 0 if result.ok else 1


def scaled(seconds: float, chosen: tuple[str, ...], out: Path | None) -> SoakConfig:
    """A shorter run keeps every attack: the quiet phase and the kill intervals shrink with it
    so that each kill happens at least once."""
    base = SoakConfig()
    quiet = min(base.quiet, max(3.0, seconds * 0.1))
    attack = max(1.0, seconds - quiet)
    return SoakConfig(
        seconds=seconds,
        quiet=quiet,
        attacks=chosen,
        host_kill_every=min(base.host_kill_every, attack / 2),
        issuer_kill_every=min(base.issuer_kill_every, attack / 2.5),
        flood_every=min(base.flood_every, attack / 2),
        flood_hold=min(base.flood_hold, attack / 4),
        out=out,
    )


if __name__ == "__main__":
    sys.exit(main())
