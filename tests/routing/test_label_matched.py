"""The local tier's own rows take the held-out tickets' label mix (label shift)."""

from __future__ import annotations

from collections import Counter

from tiergate.routing.runtime import label_matched


def test_a_matching_mix_keeps_nearly_every_row() -> None:
    gold = ["a"] * 400 + ["b"] * 400 + ["c"] * 200
    target = ["a"] * 100 + ["b"] * 100 + ["c"] * 50
    kept = label_matched(gold, target, seed=0)
    assert len(kept) >= 0.97 * len(gold)


def test_a_rarer_label_in_training_shrinks_the_others_to_its_share() -> None:
    # Out-of-scope: 1% of the training rows, 5% of the held-out tickets.
    gold = ["in"] * 9900 + ["oos"] * 100
    target = ["in"] * 950 + ["oos"] * 50
    kept = label_matched(gold, target, seed=0)
    counts = Counter(gold[i] for i in kept.tolist())
    assert counts["oos"] == 100  # every row of the scarce label stays
    assert abs(counts["oos"] / len(kept) - 0.05) < 0.002
    assert list(kept) == sorted(kept)
    assert (kept == label_matched(gold, target, seed=0)).all()
    assert not (kept == label_matched(gold, target, seed=1)).all()


def test_a_label_the_held_out_tickets_lack_keeps_a_little_weight() -> None:
    gold = ["a"] * 500 + ["b"] * 500
    kept = label_matched(gold, ["a"] * 200, seed=0)
    counts = Counter(gold[i] for i in kept.tolist())
    assert counts["a"] == 500 and 0 < counts["b"] <= 5
