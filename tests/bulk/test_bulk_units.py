"""The pieces of a bulk run on their own: rows, durable files, ordering, limits, blocks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiergate.bulk.context import BLOCK_LINES, first_line_of_block, opens_chunk
from tiergate.bulk.durable import AppendFile, last_record, read_records
from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal
from tiergate.bulk.progress import Snapshot, Ticker
from tiergate.bulk.rows import Row, RowError, count_rows, read_rows
from tiergate.bulk.state import RunFiles, StateMismatchError, claim
from tiergate.bulk.writer import OrderedWriter, Result
from tiergate.limits import RateLimits


def test_rows_keep_their_line_numbers_and_bad_lines_become_errors(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "text": "lost my card", "label": "lost_card"}\n'
        "\n"
        '{"text": "no id here"}\n'
        "{broken\n"
        '{"id": "b", "text": ""}\n'
        '{"id": true, "text": "x"}\n'
        '{"id": 7, "text": "ok", "request": 3}\n'
    )
    items = list(read_rows(source))
    assert items[0] == Row(1, "a", "lost my card", "lost_card")
    assert items[1] == Row(3, "3", "no id here")  # no id: the line number is the id
    assert isinstance(items[2], RowError) and items[2].line == 4
    assert isinstance(items[3], RowError) and items[3].id == "b"
    assert [type(item).__name__ for item in items[4:]] == ["RowError", "RowError"]
    assert count_rows(source) == 6 and count_rows(source, up_to_line=3) == 2
    assert [item.line for item in read_rows(source, after_line=4)] == [5, 6, 7]


def test_a_torn_last_line_is_ignored_and_cut_off_on_reopening(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"line": 1}\n{"line": 2}\n{"li')
    assert last_record(path) == {"line": 2}
    assert [record["line"] for record in read_records(path)] == [1, 2]
    appended = AppendFile(path)
    appended.append({"line": 3})
    appended.close()
    assert path.read_bytes() == b'{"line": 1}\n{"line": 2}\n{"line":3}\n'


def test_the_resume_point_is_the_last_line_in_either_file(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "out.jsonl", tmp_path / "errors.jsonl")
    assert files.resume_line() == 0
    files.output.write_text('{"line": 4}\n{"line": 9}\n')
    files.errors.write_text('{"line": 11, "error": "bad"}\n')
    assert files.resume_line() == 11


def test_a_run_refuses_an_output_that_belongs_to_another_run(tmp_path: Path) -> None:
    files = RunFiles(tmp_path / "out.jsonl", tmp_path / "out.errors")
    manifest = {"input": "a.jsonl", "mode": "live"}
    assert claim(files, manifest) == 0
    files.output.write_text('{"line": 5}\n')
    assert claim(files, manifest) == 5
    with pytest.raises(StateMismatchError, match="another mode"):
        claim(files, {"input": "a.jsonl", "mode": "batches"})
    stranger = RunFiles(tmp_path / "mine.jsonl", tmp_path / "mine.errors")
    stranger.output.write_text("precious\n")
    with pytest.raises(StateMismatchError, match="not written by"):
        claim(stranger, manifest)


def test_the_journal_loads_only_what_comes_after_the_resume_point(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, after_line=0)
    for line in (1, 2, 3):
        journal.record_answer(line, "haiku", {"content": [], "extra": "dropped"}, 0.5)
    journal.record_batch("sonnet", "msgbatch_1", (2, 3))
    journal.record_batch("sonnet", "msgbatch_2", (1,))
    journal.record_collected("msgbatch_1")
    journal.close()
    resumed = Journal(path, after_line=2)
    assert set(resumed.answers) == {(3, "haiku")}
    recorded = resumed.answer(3, "haiku")
    assert recorded is not None and recorded.message is not None
    assert "extra" not in recorded.message  # only what an answer is read from
    assert list(resumed.open_batches) == []  # batch 1 collected, batch 2 only covers line 1
    resumed.close()


@given(st.permutations(list(range(12))))
def test_results_are_written_in_input_order_whatever_order_they_finish_in(
    finish_order: list[int],
) -> None:
    asyncio.run(_write_in_order(finish_order))


async def _write_in_order(finish_order: list[int]) -> None:
    class Memory(AppendFile):
        def __init__(self) -> None:
            self.records: list[dict[str, object]] = []

        def append(self, record: dict[str, object]) -> None:
            self.records.append(record)

        def sync(self) -> None:
            return None

    output, errors = Memory(), Memory()
    writer = OrderedWriter(output, errors, window=12)
    places = [await writer.reserve() for _ in range(12)]
    assert writer.full
    for index in finish_order:
        line = index + 1
        if index % 5 == 4:
            writer.put(places[index], Result(errors=({"line": line, "error": "bad"},)))
        else:
            writer.put(places[index], Result({"line": line, "cost_usd": 0.0}))
    assert [record["line"] for record in output.records] == [1, 2, 3, 4, 6, 7, 8, 9, 11, 12]
    assert [record["line"] for record in errors.records] == [5, 10]
    assert not writer.full


async def test_the_gate_holds_a_model_to_its_requests_per_minute() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = UpstreamGate(RateLimits(rpm=60), concurrency=8, clock=lambda: now[0], sleep=sleep)
    for _ in range(61):
        async with gate.admit("claude-haiku-4-5", input_tokens=100, max_output_tokens=50):
            pass
    # A full bucket lets a minute's worth through at once; the 61st waits about a second.
    assert gate.calls == 61
    assert sum(slept) == pytest.approx(1.0, rel=0.01)
    async with gate.admit("claude-sonnet-4-6", 100, 50):  # another model has its own bucket
        pass
    assert sum(slept) == pytest.approx(1.0, rel=0.01)


def test_chunks_stay_inside_a_block_and_never_repeat_a_text() -> None:
    chunk = [Row(1, "1", "a"), Row(2, "2", "b")]
    assert not opens_chunk(chunk, Row(3, "3", "c"))
    assert opens_chunk(chunk, Row(4, "4", "a"))
    assert opens_chunk(chunk, Row(BLOCK_LINES + 1, "x", "d"))
    assert not opens_chunk([], Row(1, "1", "a"))
    assert first_line_of_block(0) == 1
    assert first_line_of_block(BLOCK_LINES - 1) == 1
    assert first_line_of_block(BLOCK_LINES) == BLOCK_LINES + 1
    assert first_line_of_block(BLOCK_LINES + 5) == BLOCK_LINES + 1


class RecordingStage:
    def __init__(self) -> None:
        self.advances: list[tuple[int, float, str | None]] = []

    def advance(self, count: int = 1, *, cost_usd: float = 0.0, note: str | None = None) -> None:
        self.advances.append((count, cost_usd, note))


def test_the_ticker_reports_what_was_written_since_the_last_tick() -> None:
    samples = iter([Snapshot(90, 10, 1.5, 30, 200), Snapshot(150, 10, 2.25, 60, 400)])
    times = iter([0.0, 10.0, 20.0])
    stage = RecordingStage()
    ticker = Ticker(stage, lambda: next(samples), clock=lambda: next(times))
    ticker.tick()
    ticker.tick()
    advanced = [(count, round(cost, 6)) for count, cost, _ in stage.advances]
    assert advanced == [(100, 1.5), (60, 0.75)]
    assert stage.advances[0][2] == "escalated 33.3%, upstream 20.0/s"
    assert stage.advances[1][2] == "escalated 40.0%, upstream 20.0/s"
