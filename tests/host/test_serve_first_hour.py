"""Issue 16 item 12, the way a newcomer runs it: `poshost serve --demo --issuer-sim` in a
terminal, a first command, then Ctrl-C. The simulator's lines are marked and whole, Ctrl-C
does not log a spurious link_closed_by_peer, a restart reports no failed journal writes, and
serve says what to try next."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.host.harness import free_port

POSHOST = str(Path(sys.executable).parent / "poshost")


def serve_until_banner(cwd: Path, config: Path) -> tuple[subprocess.Popen, list[str]]:
    env = {**os.environ, "POSHOST_LOG_FORMAT": "console"}
    env.pop("POSHOST_CONFIG", None)
    proc = subprocess.Popen(
        [POSHOST, "--config", str(config), "serve", "--demo", "--issuer-sim"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own foreground group, as in a shell
    )  # fmt: skip
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Stop with Ctrl-C"):
            return proc, lines
    raise AssertionError("serve ended before its banner:\n" + "".join(lines))


def ctrl_c(proc: subprocess.Popen, lines: list[str]) -> list[str]:
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    rest, _ = proc.communicate(timeout=60)
    return lines + rest.splitlines(keepends=True)


def test_serve_demo_in_a_terminal(tmp_path):
    port, sim_port = free_port(), free_port()
    config = tmp_path / "host.toml"
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\n[data]\ndir = "{tmp_path / "var"}"\n'
        '[backoffice]\nlisten = ""\n'
        f'[links.sim]\naddress = "127.0.0.1:{sim_port}"\n'
        'zpk_clear_test_key = "4CA2161637D0133E5E151AEA45DA2A12"\n'
    )
    proc, lines = serve_until_banner(tmp_path, config)
    banner = "".join(lines[-5:])
    assert "poshost terminal --profile demo:12345678 sign-on" in banner
    signed = subprocess.run(
        [POSHOST, "terminal", "--profile", "demo:12345678", "--host", f"127.0.0.1:{port}",
         "sign-on"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    out = ctrl_c(proc, lines)
    text = "".join(out)
    assert proc.returncode == 0, text
    sim_lines = [line for line in out if "issuer-sim |" in line]
    assert sim_lines and all(line.startswith("issuer-sim | ") for line in sim_lines), text
    assert any("issuer simulator listening" in line for line in sim_lines)
    assert "link_closed_by_peer" not in text
    assert "failed_ops=0" in text

    proc, lines = serve_until_banner(tmp_path, config)  # a normal restart
    text = "".join(ctrl_c(proc, lines))
    assert "failed_ops=0" in text and "failed_ops=3" not in text
    assert "link_closed_by_peer" not in text
