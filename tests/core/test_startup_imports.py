"""A backtest imports only what it uses: no scipy.stats, scikit-learn, plotly or the report
for ``regime-engine backtest --no-report`` (issue 24: imports on demand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NOT_IMPORTED = ("scipy.stats", "sklearn", "hmmlearn", "plotly", "engine.report", "arch")


def test_default_backtest_without_report_imports_no_heavy_module(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom engine.cli import main\n"
        f"rc = main(['backtest', '--no-report', '--out', {str(tmp_path)!r}])\n"
        f"print('HEAVY', [m for m in {NOT_IMPORTED!r} if m in sys.modules], rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert "HEAVY [] 0" in out, out
    assert (tmp_path / "metrics.json").is_file()
