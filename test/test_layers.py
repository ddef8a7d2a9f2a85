"""The package layers hold: import-linter's contracts in .importlinter, checked on every run.

A package imports only the packages below it (function-level imports included), and nothing but
the command line and the demo imports nav_policy.ros. A new import that breaks a layer fails
here with import-linter's report of the offending line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the dev extra (pip install -e '.[dev]')"
    done = subprocess.run([exe, "--config", str(REPO / ".importlinter")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-2000:]
