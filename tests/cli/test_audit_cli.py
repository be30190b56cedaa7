"""`tiergate audit`: bad input is one line on stderr; the table is drawn by the one formatter."""

from __future__ import annotations

from pathlib import Path

from cli_run import tiergate

from tiergate.cli.tables import render_table


def test_a_missing_config_or_an_unknown_route_is_one_line(tmp_path: Path) -> None:
    missing = tiergate("audit", "tickets", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    config = tmp_path / "gateway.yaml"
    config.write_text("routes: {}\n")
    unknown = tiergate("audit", "tickets", "--config", str(config))
    assert unknown.returncode != 0
    assert unknown.stderr.strip().endswith("'tickets' is not an engine route (none)")
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_tables_align_numbers_right_without_colour_codes() -> None:
    text = render_table(["tier", "errors"], [["local", "7"], ["claude-haiku-4-5", "12"]],
                        numeric=[False, True])  # fmt: skip
    lines = text.splitlines()
    assert "\x1b" not in text
    assert lines[0].split() == ["tier", "errors"]
    assert lines[2].endswith(" 7") and lines[3].endswith("12")
    assert len(lines[2]) == len(lines[3])  # the numbers end in one column
