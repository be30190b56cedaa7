"""Share per tier and cost per 1,000 tickets, chunk by chunk, as the local tier learns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tiergate.routing.learning import ChunkResult

COLOURS = ("#2ca02c", "#1f77b4", "#d62728", "#9467bd")


def plot_learning(
    results: Sequence[ChunkResult], tiers: Sequence[str], path: Path, *, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    seen = []
    total = 0
    for result in results:
        total += result.tickets
        seen.append(total)
    figure, (shares, costs) = plt.subplots(2, 1, figsize=(9, 7), dpi=120, sharex=True)
    bottom = [0.0] * len(results)
    for colour, tier in zip(COLOURS, tiers, strict=False):
        values = [result.shares.get(tier, 0.0) for result in results]
        shares.fill_between(
            seen,
            bottom,
            [b + v for b, v in zip(bottom, values, strict=True)],
            step="mid",
            alpha=0.8,
            color=colour,
            label=tier,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    shares.fill_between(
        seen,
        bottom,
        [1.0] * len(results),
        step="mid",
        alpha=0.3,
        color="#7f7f7f",
        label="not accepted",
    )
    shares.set_ylabel("share of tickets answered")
    shares.yaxis.set_major_formatter(PercentFormatter(1.0))
    shares.set_ylim(0, 1)
    shares.legend(loc="lower right", fontsize=8)
    shares.set_title(title, fontsize=11)
    costs.plot(seen, [result.cost_per_1000_usd for result in results], "o-", color="#1f77b4")
    costs.set_ylabel("cost per 1,000 tickets (USD)")
    costs.set_xlabel("tickets routed so far")
    costs.set_ylim(bottom=0)
    for axes in (shares, costs):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
