"""Cost against accuracy across error budgets: what each budget buys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class BudgetPoint:
    budget: float
    accuracy: float
    accepted_accuracy: float | None
    cost_per_1000_usd: float
    accepted_share: float


def plot_budgets(
    points: Sequence[BudgetPoint],
    path: Path,
    *,
    title: str,
    strong_only_per_1000_usd: float | None,
    cheap_only_per_1000_usd: float | None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    ordered = sorted(points, key=lambda point: point.budget)
    axes.plot(
        [p.cost_per_1000_usd for p in ordered],
        [p.accuracy for p in ordered],
        "o-",
        color="#1f77b4",
        linewidth=2,
        label="tiered, all final answers (flagged ones included)",
    )
    accepted = [
        (p.cost_per_1000_usd, p.accepted_accuracy)
        for p in ordered
        if p.accepted_accuracy is not None
    ]
    axes.plot(
        [cost for cost, _ in accepted],
        [accuracy for _, accuracy in accepted],
        "s--",
        color="#ff7f0e",
        linewidth=1.5,
        label="tiered, accepted answers (what the budget bounds)",
    )
    for point in ordered:
        axes.annotate(
            f"budget {point.budget:.1%}\n{point.accepted_share:.0%} accepted",
            (point.cost_per_1000_usd, point.accuracy),
            textcoords="offset points",
            xytext=(8, -22),
            fontsize=8,
        )
    if strong_only_per_1000_usd is not None:
        axes.axvline(
            strong_only_per_1000_usd, color="#d62728", linestyle="--", label="strong-only cost"
        )
    if cheap_only_per_1000_usd is not None:
        axes.axvline(
            cheap_only_per_1000_usd, color="#2ca02c", linestyle="--", label="cheap-only cost"
        )
    axes.set_xlabel("cost per 1,000 tickets (USD)")
    axes.set_ylabel("accuracy")
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_title(title, fontsize=11)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
