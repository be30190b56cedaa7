"""A ``kind: learned`` route through ``tiergate serve``, driven by the official SDK.

A small pre-call router is trained here on synthetic records (everyday questions the cheap model
gets right, technical ones it mostly gets wrong) with the real MiniLM encoder, saved, and named
by a gateway config; the gateway runs as its own process in front of the emulator.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from gw_helpers import HAIKU, SONNET, UPSTREAM_KEY, free_port
from gw_procs import GatewayProcess

from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.encoders import load_encoder
from tiergate.gateway.learned import SCORE_HEADER, THRESHOLD_HEADER, prompt_text
from tiergate.precall import LearnedRouter, Outcome, Record, TrainOptions, train_router
from tiergate.stores import FileKeyStore

EASY = [
    "What colour is a ripe banana?",
    "How many legs does a cat have?",
    "Which day comes after Monday?",
    "Is the sun hot or cold?",
    "What do cows drink?",
    "What sound does a dog make?",
    "How many wheels does a bicycle have?",
    "What season comes after winter?",
    "Is ice cream cold?",
    "What colour is grass in summer?",
]
HARD = [
    "Derive the one-loop beta function of quantum chromodynamics with six quark flavours.",
    "Prove that every finitely generated module over a principal ideal domain decomposes.",
    "Compute the Berry phase of a spin-one particle in a slowly rotating magnetic field.",
    "Show the renormalisation group flow near the Wilson-Fisher fixed point in 4-epsilon.",
    "Evaluate the residue of the Riemann zeta function's logarithmic derivative at a zero.",
    "Bound the mixing time of the Glauber dynamics for the Ising model at high temperature.",
    "State and prove the spectral theorem for compact self-adjoint operators on Hilbert space.",
    "Derive the Euler-Lagrange equations for a relativistic string in curved spacetime.",
    "Compute the homology groups of real projective space with integer coefficients.",
    "Estimate the asymptotic variance of a Metropolis-Hastings estimator with heavy tails.",
]
OPTIONS = "\nA) yes\nB) no"


def records(count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    made = []
    for index in range(count):
        hard = rng.random() < 0.4
        question = rng.choice(HARD if hard else EASY)
        cheap_right = rng.random() < (0.2 if hard else 0.97)
        strong_right = rng.random() < 0.95
        made.append(
            Record(
                f"Question {index}.\n\n{question}{OPTIONS}",
                {
                    "small": Outcome(0.001, float(cheap_right), "A" if cheap_right else "B"),
                    "large": Outcome(0.01, float(strong_right), "A" if strong_right else "B"),
                },
                id=f"q{index}",
            )
        )
    return made


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("learned")
    options = TrainOptions(
        "small", "large", quality=0.9, confidence=0.9, seconds=(), bootstraps=300
    )
    artifact = train_router(records(400, seed=1), load_encoder(), options)
    assert artifact.fit("precall").certificate.certified_any  # else the test below means nothing
    artifact.save(folder / "router")
    return folder


@pytest.fixture(scope="module")
def upstream() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(seed=7, latency_scale=0.0)) as running:
        yield running


@pytest.fixture(scope="module")
def served(router_dir: Path, upstream: EmulatorServer) -> Iterator[tuple[GatewayProcess, str]]:
    _, secret = FileKeyStore(router_dir / "keys.json").create("tests")
    config = {
        "upstream": {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY},
        "keys": "keys.json",
        "ledger": "sqlite:///ledger.db",
        "journal": "journal",
        "routes": {
            "chat": {
                "kind": "learned",
                "router": "router",
                "tiers": {"cheap": HAIKU, "strong": SONNET},
            }
        },
    }
    path = router_dir / "gateway.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    process = GatewayProcess(path, free_port(), router_dir / "gateway.log")
    process.start()
    try:
        yield process, secret
    finally:
        process.stop()


def test_the_router_sends_easy_prompts_cheap_and_hard_ones_strong(
    served: tuple[GatewayProcess, str], router_dir: Path
) -> None:
    process, secret = served
    client = anthropic.Anthropic(api_key=secret, base_url=process.base_url, max_retries=0)
    asked = {"easy": "What colour is the sky on a clear day?", "hard": HARD[0]}
    seen = {}
    for kind, question in asked.items():
        raw = client.messages.with_raw_response.create(
            model="chat",
            max_tokens=32,
            system="Answer with the letter of the right option.",
            messages=[{"role": "user", "content": f"Question 9999.\n\n{question}{OPTIONS}"}],
        )
        message = raw.parse()
        score, threshold = float(raw.headers[SCORE_HEADER]), float(raw.headers[THRESHOLD_HEADER])
        seen[kind] = (raw.headers["x-tiergate-tier"], message.model, score, threshold)
        assert raw.headers["x-tiergate-route"] == "chat"
        assert float(raw.headers["x-tiergate-cost-usd"]) > 0
        assert message.content and message.content[0].type == "text"
    assert seen["easy"][:2] == ("cheap", HAIKU) and seen["easy"][2] >= seen["easy"][3]
    assert seen["hard"][:2] == ("strong", SONNET) and seen["hard"][2] < seen["hard"][3]

    # Concurrent requests are encoded in batches; each gets the decision its prompt gets alone.
    mixed = [EASY[index % 5] if index % 2 else HARD[index % 5] for index in range(12)]
    prompts = [f"Question 0.\n\n{question}{OPTIONS}" for question in mixed]
    alone = LearnedRouter.load(router_dir / "router", variant="precall")
    expected = [alone.decide(prompt) for prompt in prompts]
    assert {decision.tier for decision in expected} == {"cheap", "strong"}
    decided = asyncio.run(_concurrently(process.base_url, secret, prompts))
    assert [tier for tier, _ in decided] == [decision.tier for decision in expected]
    for (_, header), decision in zip(decided, expected, strict=True):
        # Batch-mates change nothing (float encoders mask padding).
        assert float(header) == pytest.approx(decision.score, abs=1e-3)

    with client.messages.stream(
        model="chat", max_tokens=32, messages=[{"role": "user", "content": asked["easy"]}]
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.model in (HAIKU, SONNET) and streamed.usage.output_tokens > 0

    process.stop()  # flushes the ledger
    with sqlite3.connect(router_dir / "ledger.db") as ledger:
        rows = ledger.execute(
            "SELECT route, tier, model, status, streamed, cost_usd FROM requests ORDER BY id"
        ).fetchall()
    assert [row[:5] for row in rows[:2]] == [
        ("chat", "cheap", HAIKU, 200, 0),
        ("chat", "strong", SONNET, 200, 0),
    ]
    assert len(rows) == 15 and rows[-1][0] == "chat" and rows[-1][4] == 1
    assert sorted(row[1] for row in rows[2:14]) == sorted(tier for tier, _ in decided)
    assert all(row[5] > 0 for row in rows)


async def _concurrently(base_url: str, key: str, prompts: list[str]) -> list[tuple[str, str]]:
    async with anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0) as client:
        answers = await asyncio.gather(
            *(
                client.messages.with_raw_response.create(
                    model="chat", max_tokens=16, messages=[{"role": "user", "content": prompt}]
                )
                for prompt in prompts
            )
        )
    return [(a.headers["x-tiergate-tier"], a.headers[SCORE_HEADER]) for a in answers]


def test_the_prompt_the_router_reads_is_every_text_block_in_order() -> None:
    body = {
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": [{"type": "text", "text": "An answer."}]},
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "data": "x"}},
                    {"type": "text", "text": "Second question?"},
                ],
            },
        ],
    }
    assert prompt_text(body) == "Be brief.\n\nFirst question?\n\nAn answer.\n\nSecond question?"
    assert prompt_text({"messages": []}) == ""
