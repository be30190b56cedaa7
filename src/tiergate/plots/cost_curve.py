"""Monthly cost against escalation share for cheap-only, strong-only and tiered."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tiergate.core.calculator import DAYS_PER_MONTH, Comparison, tiered_per_request


def _dollars(value: float, _position: object = None) -> str:
    if value >= 1_000_000:
        return f"${value / 1_000_000:,.1f}M"
    if value >= 1_000:
        return f"${value / 1_000:,.0f}k"
    return f"${value:,.0f}" if value == 0 else f"${value:,.2f}"


def plot_cost_curve(comparison: Comparison, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    workload, levers = comparison.workload, comparison.levers
    monthly = workload.requests_per_day * DAYS_PER_MONTH
    top = 1.0 - levers.local
    shares = [top * step / 200 for step in range(201)]
    tiered = [
        tiered_per_request(
            workload, replace(levers, escalation=share), comparison.cheap, comparison.strong
        )
        * monthly
        for share in shares
    ]

    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=120)
    axes.plot(shares, tiered, color="#1f77b4", linewidth=2.5, label=f"tiered ({levers.mode})")
    axes.axhline(
        comparison.strong_only.per_month_usd,
        color="#d62728",
        linewidth=2,
        linestyle="--",
        label=f"strong-only ({comparison.strong.name})",
    )
    axes.axhline(
        comparison.cheap_only.per_month_usd,
        color="#2ca02c",
        linewidth=2,
        linestyle="--",
        label=f"cheap-only ({comparison.cheap.name})",
    )
    axes.plot(
        [levers.escalation],
        [comparison.tiered.per_month_usd],
        "o",
        color="#1f77b4",
        markersize=9,
        label=f"you: {levers.escalation:.0%} escalated, "
        f"{_dollars(comparison.tiered.per_month_usd)}/month "
        f"({comparison.savings_vs_strong:.1%} saved)",
    )
    break_even = comparison.break_even_escalation
    if break_even is not None:
        axes.axvline(break_even, color="#7f7f7f", linewidth=1, linestyle=":")
        axes.plot(
            [break_even], [comparison.strong_only.per_month_usd], "X", color="black", markersize=11
        )
        axes.annotate(
            f"break-even: {break_even:.1%} escalated",
            xy=(break_even, comparison.strong_only.per_month_usd),
            xytext=(12, -28),
            textcoords="offset points",
            fontsize=11,
            fontweight="bold",
        )
    extras = []
    if levers.local:
        extras.append(f"{levers.local:.0%} local")
    if levers.cached_input:
        extras.append(f"{levers.cached_input:.0%} of input cached")
    if levers.batch:
        extras.append(f"{levers.batch:.0%} batched")
    rate = f"{workload.requests_per_day:,.0f} requests/day"
    tokens = f"{workload.input_tokens:,.0f} in / {workload.output_tokens:,.0f} out tokens"
    axes.set_title(
        f"Monthly cost against escalation share\n{rate}, {tokens}"
        + (f", {', '.join(extras)}" if extras else ""),
        fontsize=12,
    )
    axes.set_xlabel("share of requests escalated to the strong tier")
    axes.set_ylabel("cost per 30-day month (USD)")
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.yaxis.set_major_formatter(FuncFormatter(_dollars))
    axes.set_xlim(0, top)
    axes.set_ylim(0, max(max(tiered), comparison.strong_only.per_month_usd) * 1.08)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
