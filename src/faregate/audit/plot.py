"""`--plot FILE.png`: spend against the savings baseline by day (matplotlib, no display needed)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from faregate.audit.model import AuditResult


def plot_spend(result: AuditResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spend = next((s for s in result.sections if s.name == "spend"), None)
    days = [r for r in (spend.rows if spend else ()) if r["by"] == "day"]
    labels = [r["value"] for r in days]
    actual = [float(Decimal(r["spend_usd"])) for r in days]
    baseline = [float(Decimal(r["baseline_usd"])) for r in days]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(labels, baseline, marker="o", label="baseline (without routing)")
    ax.plot(labels, actual, marker="o", label="actual spend")
    ax.set_ylabel("USD per day")
    ax.set_ylim(bottom=0)  # from zero, so the gap is shown at its true size
    ax.set_title("faregate: spend against the savings baseline")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
