"""``tiergate emulate``: run the Claude API emulator; ``emulate build-scenario`` makes its data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tiergate.cli.errors import CliError, OneLineParser, non_negative, share

HELP_EPILOG = """\
fault header (per request, for tests and demos): x-tiergate-fault: 529 | 500*2 |
stream-error[@N] | slow=SECONDS | retry=true|false (comma-separated). See docs/emulator.md.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "emulate",
        help="run a local emulator of the Claude API (emulated answers, no network)",
        description="Serve an emulator of the Anthropic Messages API on loopback. Answers are "
        "emulated, not Claude's; every response carries x-tiergate-emulated: true.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8090, help="port (default 8090)")
    parser.add_argument(
        "--latency",
        default="realistic",
        metavar="realistic|zero|SCALE",
        help="realistic: each model's time to first token and output speed from the price book; "
        "zero: answer at once; a number scales realistic (default realistic)",
    )
    for flag, what in (
        ("--rpm", "requests"),
        ("--itpm", "input tokens"),
        ("--otpm", "output tokens"),
    ):
        parser.add_argument(
            flag, type=_positive_int, metavar="N", help=f"{what} per minute, per model"
        )
    parser.add_argument(
        "--fail",
        default="",
        metavar="STATUS:RATE,...",
        help="inject errors, e.g. 529:0.01,500:0.005",
    )
    parser.add_argument(
        "--stream-error",
        type=share,
        default=0.0,
        metavar="RATE",
        help="share of streams broken by an overloaded_error event after the first delta",
    )
    parser.add_argument(
        "--slow-first-byte",
        default="",
        metavar="RATE:SECONDS",
        help="share of responses whose first byte waits SECONDS, e.g. 0.05:3",
    )
    parser.add_argument(
        "--should-retry",
        choices=("true", "false", "omit"),
        default="omit",
        help="x-should-retry header on injected failures (default omit: the SDK decides)",
    )
    parser.add_argument(
        "--no-fault-header", action="store_true", help="ignore the x-tiergate-fault request header"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for answers, ids and faults")
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario file (JSON or YAML): classification, kind: agent or kind: extract",
    )
    parser.add_argument(
        "--route",
        metavar="ROUTE",
        help="instead of --scenario: the scenario of a route's task, from the route's data",
    )
    parser.add_argument(
        "--batch-seconds",
        type=non_negative,
        default=5.0,
        metavar="S",
        help="time a message batch takes to end (default 5)",
    )
    parser.add_argument(
        "--prices", metavar="FILE", help="price book to merge over the built-in one"
    )
    parser.add_argument(
        "--api-key", action="append", metavar="KEY", help="accept only these keys (repeatable)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.set_defaults(handler=_serve)

    actions = parser.add_subparsers(
        dest="emulate_action", metavar="ACTION", parser_class=OneLineParser
    )
    build = actions.add_parser(
        "build-scenario",
        help="build a scenario file from labelled CSV files",
        description="Build a classification scenario from CSV files (a text and a label column).",
    )
    build.add_argument("--from", dest="sources", action="append", required=True, metavar="CSV")
    build.add_argument("--out", required=True, metavar="FILE", help=".json, or .yaml/.yml")
    build.add_argument("--text-column", default="text")
    build.add_argument("--label-column", default="category")
    build.add_argument("--name", help="scenario name (default: the CSV names)")
    build.add_argument(
        "--accuracy",
        action="append",
        default=[],
        metavar="MODEL=SHARE",
        help="assumed accuracy of a model id or family, e.g. haiku=0.85 (repeatable)",
    )
    build.add_argument("--correlation", type=share, default=0.7, help="rho, see docs (default 0.7)")
    build.set_defaults(handler=_build)


def _serve(args: argparse.Namespace) -> int:
    from tiergate.core.prices import load_price_book
    from tiergate.emulator import EmulatorConfig, FaultPlan, load_scenario, serve_forever
    from tiergate.emulator.faults import FaultSpecError, parse_failures, parse_slow
    from tiergate.emulator.latency import parse_latency
    from tiergate.emulator.scenario import ScenarioError
    from tiergate.limits import RateLimits

    try:
        latency = parse_latency(args.latency)
        failures = parse_failures(args.fail)
        slow_rate, slow_s = parse_slow(args.slow_first_byte) if args.slow_first_byte else (0.0, 0.0)
        scenario = load_scenario(args.scenario) if args.scenario else None
        if args.route and scenario is None:
            scenario = _route_scenario(args.route)
    except (ValueError, FaultSpecError, ScenarioError) as error:
        raise CliError(str(error)) from None
    config = EmulatorConfig(
        latency_scale=latency,
        limits=RateLimits(args.rpm, args.itpm, args.otpm),
        faults=FaultPlan(
            failures=failures,
            stream_error_rate=args.stream_error,
            slow_first_byte_rate=slow_rate,
            slow_first_byte_s=slow_s,
            should_retry=None if args.should_retry == "omit" else args.should_retry,
            header_control=not args.no_fault_header,
        ),
        seed=args.seed,
        scenario=scenario,
        batch_processing_s=args.batch_seconds,
        api_keys=frozenset(args.api_key) if args.api_key else None,
        price_book=load_price_book(args.prices),
    )
    sys.stderr.write(
        f"tiergate emulate: emulated Claude API on http://{args.host}:{args.port} "
        f"(latency {args.latency}, seed {args.seed}{_described(scenario)}); "
        "answers are emulated, not Claude's\n"
    )
    serve_forever(config, args.host, args.port, args.log_level)
    return 0


def _route_scenario(path: str) -> Any:
    """The route's task's scenario, knowing every labelled example of the route's data."""
    from tiergate.errors import TiergateError
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import read_examples, route_data

    try:
        route = load_route(path)
        data = route_data(route)
        examples = data.train + data.calibration
        if route.test_data is not None:
            examples += read_examples(route, route.test_data)
    except TiergateError as error:
        raise CliError(str(error)) from None
    return route.task.scenario(examples, route.name)


def _described(scenario: object) -> str:
    from tiergate.emulator.agent_scenario import AgentScenario
    from tiergate.emulator.extract_scenario import ExtractScenario
    from tiergate.emulator.scenario import Scenario
    from tiergate.emulator.tool_scenario import ToolScenario

    if isinstance(scenario, Scenario):
        return f", scenario {scenario.name} with {len(scenario.items)} texts"
    if isinstance(scenario, AgentScenario):
        return f", agent scenario {scenario.name} with {len(scenario.rules)} rules"
    if isinstance(scenario, ExtractScenario):
        return f", extraction scenario {scenario.name} with {len(scenario.items)} documents"
    if isinstance(scenario, ToolScenario):
        return f", tool scenario {scenario.name} with {len(scenario.items)} requests"
    return ""


def _build(args: argparse.Namespace) -> int:
    from tiergate.emulator import build_scenario, write_scenario
    from tiergate.emulator.scenario import ScenarioError

    accuracies: dict[str, float] = {}
    for item in args.accuracy:
        model, _, value = item.partition("=")
        try:
            accuracies[model] = share(value)
        except argparse.ArgumentTypeError as error:
            raise CliError(f"--accuracy {item}: {error}") from None
        if not model:
            raise CliError(f"--accuracy expects MODEL=SHARE, got {item!r}")
    try:
        scenario = build_scenario(
            args.sources,
            text_column=args.text_column,
            label_column=args.label_column,
            name=args.name,
            accuracies=accuracies,
            correlation=args.correlation,
        )
        path = write_scenario(scenario, args.out)
    except ScenarioError as error:
        raise CliError(str(error)) from None
    except OSError as error:
        raise CliError(f"cannot write {args.out}: {error.strerror}") from None
    print(f"wrote {path}: {len(scenario['items'])} texts, {len(scenario['labels'])} labels")
    return 0


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
