"""`heaters-db demo` end to end: its own embedded cluster, real daemon, simulated sorter.

Slow (about a minute): it is the README's main command, so CI proves it works and that sorting
improves trick search, not just that it exits 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from heaters_db.localdb import LocalCluster


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_trains_a_head_that_beats_the_base_space(tmp_path):
    home = tmp_path / "home"
    env = os.environ | {"HEATERS_HOME": str(home), "HEATERS_LOG_LEVEL": "WARNING"}
    for name in ("HEATERS_DATABASE_URL", "DATABASE_URL", "HEATERS_MODEL", "HEATERS_MODEL_DIR"):
        env.pop(name, None)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "heaters_db", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        output = result.stdout
        assert "RANDOM weights" in output and "SIMULATED sorter" in output
        match = re.search(
            r"recall@10 of same-trick clips: before ([\d.]+) -> after ([\d.]+) \((.*)\)", output
        )
        assert match, output[-2000:]
        before, after, space = float(match.group(1)), float(match.group(2)), match.group(3)
        assert space.startswith("trick head v"), output[-2000:]
        assert after > before + 0.2, (before, after)
        # Every round says what the gate decided and why, and what the library serves after it;
        # a head the gate let through never made served recall much worse (the gate refuses a
        # head measured worse than the live one).
        rounds = re.findall(r"served recall@10 after round (\d+): ([\d.]+)", output)
        assert [int(n) for n, _ in rounds] == [1, 2, 3, 4], output[-3000:]
        assert len(re.findall(r"head v\d+: \w+ - gate: \S+", output)) == 4, output[-3000:]
        served = [float(value) for _, value in rounds]
        assert all(b >= a - 0.05 for a, b in zip(served, served[1:], strict=False)), served
        assert "heaters-db sort" in output
    finally:
        LocalCluster(home).destroy()
