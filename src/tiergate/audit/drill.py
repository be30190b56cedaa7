"""A drift drill on the full BANKING77 route: the audit detects it, reacts, and a refit restores.

The route is ``examples/banking77`` as shipped (77 queues, 1% budget at 95% confidence, the
local tier trained and calibrated as ``make demo`` does). Then the business moves queues: every
payment a customer does not recognise (card payments, direct debits, cash withdrawals) now goes
to the fraud queue, ``compromised_card`` (``MOVED``). The Claude tiers are told (the emulator,
in its own process, answers the new queue for those texts); the local model still answers the
old one, with the confidence it learnt. Through an in-process gateway with the route's audit on:

1. a stream of test-split texts of the other intents: the false alarms;
2. a fresh gateway: steady texts, then a stream where a share of the texts are moved ones:
   requests until the audit's bound crosses the budget, the reaction, the audit's cost against
   the serving cost;
3. ``tiergate calibrate ROUTE --from-audit GATEWAY.yaml`` on what the audit recorded, and more
   drifted traffic: accepted accuracy against the new queues, beside the budget.

New intents the local tier never saw are the other drift; measured with the local tier trained
without five card-payment intents, they raised no alarm: the local tier passed those texts up
the ladder and the Claude tiers answered them (docs/audit.md).

The audit queue is drained after every chunk of requests (the test helpers do the same), so the
figures count requests, not seconds. ``bench/drift.py`` prints them; ``make demo`` runs it small.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "banking77"
ROUTE_NAME = "banking77"
# The queue move: each intent's texts now belong to this queue.
MOVED = {
    "card_payment_not_recognised": "compromised_card",
    "direct_debit_payment_not_recognised": "compromised_card",
    "cash_withdrawal_not_recognised": "compromised_card",
}
EMULATOR_SEED = 0
UPSTREAM_KEY = "sk-drill-not-a-real-key"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Ticket:
    text: str
    label: str


@dataclass(frozen=True)
class DrillSizes:
    steady: int = 2000  # the no-drift stream
    before: int = 300  # steady requests before the drift starts
    drifted: int = 1200  # the drifted stream's length, at most (it stops after detection)
    after: int = 200  # drifted requests after the refit
    drift_share: float = 0.5  # share of the drifted stream from moved intents
    chunk: int = 50  # requests between audit checks
    sample_rate: float = 0.2
    window: int = 300
    after_detection: int = 700  # requests after the breach (the reaction at work; a 1% refit
    # needs about 650 audited texts: no error in n bounds the rate at ln(1/delta) / n)
    refit: bool = True  # step 3: calibrate --from-audit and more drifted traffic


@dataclass
class Stream:
    """What a stream did: per request the tier and whether it was accepted and right."""

    sent: int = 0
    tiers: list[str] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    right: list[bool] = field(default_factory=list)  # against the true label
    checks: list[str] = field(default_factory=list)  # the verdict after each chunk
    first_breach: int | None = None  # requests sent when the verdict first read breached


@dataclass
class DrillResult:
    sizes: DrillSizes
    steady: Stream
    steady_report: dict[str, Any]
    before: Stream
    drifted: Stream
    detected_after: int | None  # drifted requests until the breach
    reaction: str | None
    top_share_after_breach: float | None
    serving_usd: float  # the no-drift stream's
    audit_usd: float
    strong_only_usd: float
    refit: dict[str, Any]
    refit_said: str
    after: Stream
    after_report: dict[str, Any]
    seconds: float


# -- data -----------------------------------------------------------------------------------


def _read(path: Path) -> list[Ticket]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [Ticket(row["text"], row["category"]) for row in csv.DictReader(handle)]


def interleave(tickets: Sequence[Ticket]) -> list[Ticket]:
    """Labels taken in turn, so any stretch of the stream mixes them."""
    by_label: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        by_label.setdefault(ticket.label, []).append(ticket)
    queues = list(by_label.values())
    mixed: list[Ticket] = []
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    return mixed


def mixed(steady: Sequence[Ticket], drifted: Sequence[Ticket], share: float) -> Iterator[Ticket]:
    """``share`` of the stream from ``drifted``, evenly spread, the rest from ``steady``; it
    ends when the pool whose turn it is runs out."""
    taken = [0, 0]
    pools = (steady, drifted)
    while True:
        which = 1 if taken[1] + 1 <= share * (sum(taken) + 1) + 1e-9 else 0
        if taken[which] >= len(pools[which]):
            return
        yield pools[which][taken[which]]
        taken[which] += 1


def _write(path: Path, tickets: Sequence[Ticket]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows((t.text, t.label) for t in tickets)


# -- the route and the emulator ---------------------------------------------------------------


def base_route(work: Path, say: Say) -> Path:
    """examples/banking77 trained and calibrated as shipped (emulated Claude answering the
    route's own labels): its artifacts copied when ``make demo`` made them, else made once in
    ``work/base`` by ``tiergate train`` and ``tiergate calibrate``."""
    folder = work / "base"
    if (folder / "artifacts" / "calibration.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(EXAMPLE, folder)  # the demo's artifacts too, when there
    if not (folder / "artifacts" / "calibration.json").exists():
        say(f"training and calibrating {folder} as shipped (once; the demo's artifacts reused) ...")
        for command in ("train", "calibrate"):
            _tiergate(command, str(folder))
    return folder


def _tiergate(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    clean.update(HF_HUB_OFFLINE="1", **env)
    command = [sys.executable, "-m", "tiergate", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env=clean, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"tiergate {' '.join(arguments)} failed: {done.stderr[-800:]}")
    return done


def fresh_copy(base: Path, folder: Path) -> Path:
    """A new run folder (no ledger left from a run before) holding a copy of the route."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder / "route")
    return folder / "route"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def emulator_process(work: Path) -> Iterator[str]:
    """``tiergate emulate`` in its own process, knowing every BANKING77 text; stopped at exit."""
    from tiergate.emulator import write_scenario
    from tiergate.emulator.scenario_build import scenario_dict

    work.mkdir(parents=True, exist_ok=True)
    scenario = work / "banking77_moved_scenario.json"
    if not scenario.exists():
        data = EXAMPLE / "data"
        rows = [
            (t.text, MOVED.get(t.label, t.label))
            for path in (data / "banking77_train.csv", data / "banking77_test.csv")
            for t in _read(path)
        ]
        write_scenario(scenario_dict(rows, name="banking77-moved"), scenario)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tiergate",
        "emulate",
        "--port",
        str(port),
        "--latency",
        "zero",
        "--batch-seconds",
        "0",
        "--seed",
        str(EMULATOR_SEED),
        "--scenario",
        str(scenario),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _until_listening(process, port)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until_listening(process: subprocess.Popen[bytes], port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"the emulator stopped: {error[-400:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the emulator did not start listening within a minute")


# -- the gateway ------------------------------------------------------------------------------


def audit_settings(sizes: DrillSizes) -> dict[str, Any]:
    return {
        "sample_rate": sizes.sample_rate,
        "window": sizes.window,
        "mode": "batches",
        "batch_size": 10_000,
        "batch_wait_s": 3600,  # drained after every chunk instead
        "poll_s": 0.05,
        "reaction": "top_tier",
        "seed": 7,
    }


def gateway_config(folder: Path, route: Path, emulator_url: str, sizes: DrillSizes) -> Path:
    """A gateway config serving the route as ``banking77``, audited; written as gateway.yaml."""
    raw = {
        "upstream": {"base_url": emulator_url, "api_key": UPSTREAM_KEY},
        "keys": "keys.json",
        "ledger": f"sqlite:///{(folder / 'ledger.db').resolve()}",
        "routes": {ROUTE_NAME: {"kind": "classify", "route": str(route.resolve())}},
        "audit": {ROUTE_NAME: audit_settings(sizes)},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Drill:
    """An in-process gateway on one route copy, and an admin key to read its reports."""

    def __init__(self, config_path: Path) -> None:
        from tiergate.gateway import GatewayServer, KeyStore, parse_config

        raw = yaml.safe_load(config_path.read_text())
        self.folder = config_path.parent
        self.config_path = config_path
        store = KeyStore(self.folder / "keys.json")
        _, self.key = store.create("drill")
        _, self.admin = store.create("operator", admin=True)
        self.server = GatewayServer(parse_config(raw, self.folder, {}))

    def __enter__(self) -> Drill:
        import anthropic

        self.server.start()
        url = self.server.base_url
        self.client = anthropic.Anthropic(api_key=self.key, base_url=url, max_retries=0)
        self.operator = anthropic.Anthropic(api_key=self.admin, base_url=url, max_retries=0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.operator.close()
        self.server.stop()

    @property
    def auditor(self) -> Any:
        return self.server.app.services.audits.routes[ROUTE_NAME]

    def admin_get(self, path: str) -> Any:
        return self.operator.get(path, cast_to=object)

    def report(self) -> dict[str, Any]:
        return dict(self.admin_get(f"/v1/audit?route={ROUTE_NAME}")["routes"][ROUTE_NAME])

    def send(
        self,
        tickets: Sequence[Ticket],
        chunk: int,
        stream: Stream | None = None,
        *,
        stop_after_breach: int | None = None,
    ) -> Stream:
        """Classify the tickets, auditing what was sampled after each chunk."""
        stream = stream or Stream()
        for start in range(0, len(tickets), chunk):
            for ticket in tickets[start : start + chunk]:
                body: Any = self.client.post(
                    "/v1/classify", body={"route": ROUTE_NAME, "text": ticket.text}, cast_to=object
                )
                stream.sent += 1
                stream.tiers.append(str(body["tier"]))
                stream.accepted.append(bool(body["accepted"]))
                stream.right.append(body["label"] == ticket.label)
            self.server.call(self.server.app.services.audits.drain)
            status = str(self.report()["status"])
            stream.checks.append(status)
            if status == "breached" and stream.first_breach is None:
                stream.first_breach = stream.sent
            if (
                stop_after_breach is not None
                and stream.first_breach is not None
                and stream.sent - stream.first_breach >= stop_after_breach
            ):
                break
        return stream

    def until_recalibrated(self, timeout_s: float = 60) -> None:
        """The audit loop looks at calibration.json once a second."""
        deadline = time.monotonic() + timeout_s
        while self.auditor.engaged is not None or self.auditor.breached_at is not None:
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not take the new calibration")
            time.sleep(0.2)


def calibrate_from_audit(
    route: Path, config: Path, emulator_url: str
) -> tuple[dict[str, Any], str]:
    """``tiergate calibrate ROUTE --from-audit GATEWAY.yaml --json``, in its own process, the
    Claude tiers it still needs asked of the drill's emulator."""
    done = _tiergate(
        "calibrate", str(route), "--from-audit", str(config), "--base-url", emulator_url,
        "--json", ANTHROPIC_API_KEY=UPSTREAM_KEY,
    )  # fmt: skip
    return json.loads(done.stdout), done.stderr


# -- the drill --------------------------------------------------------------------------------


def run_drill(work: Path, sizes: DrillSizes = DrillSizes(), say: Say = print) -> DrillResult:
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import route_data

    started = time.perf_counter()
    spec = yaml.safe_load((EXAMPLE / "route.yaml").read_text())
    test = _read(EXAMPLE / spec["data"]["test"])
    base = base_route(work, say)
    data = route_data(load_route(base))
    # A few test texts are training texts too: the stream leaves out what the local tier learnt.
    learnt = {example.text for example in data.train}
    test = [t for t in test if t.text not in learnt]
    steady_pool = interleave([t for t in test if t.label not in MOVED])
    # Their test texts, then those the route held out of the local tier's training (for
    # calibration): all now belong to the new queue.
    held_out = [Ticket(e.text, str(e.label)) for e in data.calibration if e.text not in learnt]
    moved = [
        Ticket(t.text, MOVED[t.label])
        for t in [*interleave(test), *interleave(held_out)]
        if t.label in MOVED
    ]
    # The last of the moved texts are kept for after the refit: traffic it has not seen.
    kept = int(sizes.after * sizes.drift_share) if sizes.refit else 0
    moved_live, moved_after = moved[: len(moved) - kept], moved[len(moved) - kept :]
    with emulator_process(work) as emulator_url:
        say(f"1. no drift: {sizes.steady:,} test texts of the intents that did not move ...")
        folder = work / "steady"
        route = fresh_copy(base, folder)
        with Drill(gateway_config(folder, route, emulator_url, sizes)) as drill:
            steady = drill.send(steady_pool[: sizes.steady], sizes.chunk)
            steady_report = drill.report()
            usage = drill.admin_get("/v1/usage")

        say(f"2. drift: {sizes.before} steady, then {sizes.drift_share:.0%} moved texts ...")
        folder = work / "drift"
        route = fresh_copy(base, folder)
        # Steady texts the no-drift stream did not use come first, then the rest again.
        rest = steady_pool[sizes.steady :] + steady_pool[: sizes.steady]
        before_tickets, rest = rest[: sizes.before], rest[sizes.before :]
        after_steady, rest = rest[: sizes.after - kept], rest[sizes.after - kept :]
        drifting = list(mixed(rest, moved_live, sizes.drift_share))
        # When the moved texts run out, the traffic goes on with the others.
        drifting += rest[sum(t not in moved_live for t in drifting) :]
        config = gateway_config(folder, route, emulator_url, sizes)
        with Drill(config) as drill:
            before = drill.send(before_tickets, sizes.chunk)
            drifted = drill.send(
                drifting[: sizes.drifted], sizes.chunk, stop_after_breach=sizes.after_detection
            )
            report = drill.report()
            detected = drifted.first_breach
            after_breach = drifted.tiers[_chunk_end(detected, sizes.chunk) :] if detected else []
            top = drill.auditor.top
            top_share = after_breach.count(top) / len(after_breach) if after_breach else None
            refit: dict[str, Any] = {}
            said = ""
            after, after_report = Stream(), {}
            if sizes.refit:
                say("3. tiergate calibrate --from-audit, then more drifted traffic ...")
                refit, said = calibrate_from_audit(route, config, emulator_url)
                drill.until_recalibrated()
                tail = list(mixed(after_steady, moved_after, sizes.drift_share))
                after = drill.send(tail, sizes.chunk)
                after_report = drill.report()
    return DrillResult(
        sizes=sizes,
        steady=steady,
        steady_report=steady_report,
        before=before,
        drifted=drifted,
        detected_after=detected,
        reaction=report["reaction_engaged"],
        top_share_after_breach=top_share,
        serving_usd=float(usage["total"]["spend_usd"]),
        audit_usd=float(usage["audit"]["spend_usd"]),
        strong_only_usd=float(usage["total"]["strong_only_usd"]),
        refit=refit,
        refit_said=said,
        after=after,
        after_report=after_report,
        seconds=time.perf_counter() - started,
    )


def _chunk_end(sent: int | None, chunk: int) -> int:
    """The first request after the chunk whose check found the breach."""
    return 0 if sent is None else -(-sent // chunk) * chunk


def accepted_accuracy(stream: Stream) -> tuple[float, float | None]:
    """Accepted share and accepted accuracy (true labels)."""
    accepted = [right for right, ok in zip(stream.right, stream.accepted, strict=True) if ok]
    share = len(accepted) / stream.sent if stream.sent else 0.0
    return share, (sum(accepted) / len(accepted) if accepted else None)
