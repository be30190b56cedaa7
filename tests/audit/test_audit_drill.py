"""The drift drill's streams (bench/drift.py, make demo): what the gateway is sent, in order."""

from __future__ import annotations

from tiergate.audit.drill import MOVED, Ticket, interleave, mixed


def test_the_drifted_stream_holds_the_share_asked_for_at_every_stretch() -> None:
    steady = [Ticket(f"s{i}", "steady") for i in range(300)]
    moved = [Ticket(f"m{i}", "compromised_card") for i in range(100)]
    stream = list(mixed(steady, moved, 0.25))
    assert len(stream) == 400  # both pools used up together at this share
    for start in range(0, 400, 40):
        stretch = stream[start : start + 40]
        assert sum(t.label == "compromised_card" for t in stretch) == 10
    # Order within each pool is kept, nothing is repeated.
    assert [t for t in stream if t.label == "steady"] == steady
    assert len({t.text for t in stream}) == 400


def test_a_stream_stops_when_a_pool_runs_out_and_labels_take_turns() -> None:
    steady = [Ticket(f"s{i}", "steady") for i in range(10)]
    moved = [Ticket(f"m{i}", "compromised_card") for i in range(100)]
    assert sum(t.label == "steady" for t in mixed(steady, moved, 0.5)) == 10
    tickets = [Ticket(f"{label}{i}", label) for label in "abc" for i in range(3)]
    assert [t.label for t in interleave(tickets)] == list("abcabcabc")
    # The queue move sends every "not recognised" payment to one queue of the route.
    assert set(MOVED.values()) == {"compromised_card"}
    assert all(name.endswith("_not_recognised") for name in MOVED)
