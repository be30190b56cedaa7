"""Contrastive fine-tuning of a sentence encoder on a route's own labelled texts (SetFit-style).

Pairs of texts with the same label are pulled together and every other pair in the batch pushed
apart (multiple-negatives ranking loss, both directions, as sentence-transformers'
``MultipleNegativesSymmetricRankingLoss``). Each batch holds pairs of distinct labels, so no
in-batch "negative" is secretly a positive. The loop is plain torch rather than
sentence-transformers' trainer: that trainer needs the ``datasets`` package and prints progress
bars; this one needs neither and reports progress through a callback.

Cost: a step of 32 pairs (64 texts of up to 32 tokens) takes seconds on two shared cores, so
``max_pairs`` bounds the time, and only the top layers are trained (``top_layers``);
``docs/local_tier.md`` has the measured figures.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from tiergate.encoders.quiet import quiet_libraries
from tiergate.encoders.sentence_transformer import resolve_model_path

Progress = Callable[[str], None]
# Cosine similarities times this scale are the logits of the ranking loss (sentence-
# transformers' default for MultipleNegativesRankingLoss).
SIMILARITY_SCALE = 20.0
WARMUP_SHARE = 0.1


def label_pairs(
    texts: Sequence[str], labels: Sequence[str], *, max_pairs: int, seed: int
) -> list[tuple[str, str, str]]:
    """(anchor, positive, label) pairs: each text once as anchor, with another of its label.

    Labels with a single text give no pair. When there are more pairs than ``max_pairs``, the
    pairs kept are spread over labels round robin, so no label is dropped while others keep all.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(label, []).append(text)
    per_label: dict[str, list[tuple[str, str, str]]] = {}
    for label, members in sorted(by_label.items()):
        if len(members) < 2:
            continue
        shuffled = members[:]
        rng.shuffle(shuffled)
        per_label[label] = [
            (anchor, shuffled[(i + 1) % len(shuffled)], label) for i, anchor in enumerate(shuffled)
        ]
    pairs: list[tuple[str, str, str]] = []
    round_number = 0
    while len(pairs) < max_pairs and any(round_number < len(p) for p in per_label.values()):
        for label_pairs_ in per_label.values():
            if round_number < len(label_pairs_) and len(pairs) < max_pairs:
                pairs.append(label_pairs_[round_number])
        round_number += 1
    return pairs


def distinct_label_batches(
    pairs: Sequence[tuple[str, str, str]], batch_size: int, seed: int
) -> list[list[tuple[str, str, str]]]:
    """Batches in which no two pairs share a label (in-batch negatives must be negatives)."""
    rng = random.Random(seed)
    queues: dict[str, list[tuple[str, str, str]]] = {}
    for pair in pairs:
        queues.setdefault(pair[2], []).append(pair)
    for queue in queues.values():
        rng.shuffle(queue)
    batches: list[list[tuple[str, str, str]]] = []
    while queues:
        # Labels with the most pairs left go first, so the tail is not one label's leftovers.
        ranked = sorted(queues, key=lambda label: (-len(queues[label]), rng.random()))
        chosen = ranked[:batch_size]
        batches.append([queues[label].pop() for label in chosen])
        for label in chosen:
            if not queues[label]:
                del queues[label]
    rng.shuffle(batches)
    # A batch of one pair has no negative to learn from.
    return [batch for batch in batches if len(batch) > 1]


def finetune(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    source: str,
    max_pairs: int,
    epochs: int = 1,
    max_seq_length: int = 32,
    batch_size: int = 32,
    learning_rate: float = 3e-5,
    top_layers: int = 3,
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> Any:
    """Return a SentenceTransformer loaded from ``source`` and fine-tuned on the pairs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_libraries()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    model = SentenceTransformer(resolve_model_path(source), device="cpu")
    model.max_seq_length = max_seq_length
    trainable = _freeze_below(model, top_layers)
    schedule = [
        distinct_label_batches(
            label_pairs(texts, labels, max_pairs=max_pairs, seed=seed + epoch),
            batch_size,
            seed + epoch,
        )
        for epoch in range(epochs)
    ]
    steps = sum(len(batches) for batches in schedule)
    if steps == 0:
        raise ValueError("fine-tuning needs at least two labels with two texts each")
    optimiser = torch.optim.AdamW(trainable, lr=learning_rate)
    warmup = max(1, int(WARMUP_SHARE * steps))

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    model.train()
    started = time.perf_counter()
    step = 0
    report_every = max(1, steps // 10)
    for batches in schedule:
        for batch in batches:
            anchors = _embed(model, [pair[0] for pair in batch])
            positives = _embed(model, [pair[1] for pair in batch])
            scores = SIMILARITY_SCALE * anchors @ positives.T
            target = torch.arange(len(batch))
            loss = (
                torch.nn.functional.cross_entropy(scores, target)
                + torch.nn.functional.cross_entropy(scores.T, target)
            ) / 2
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad()
            step += 1
            if progress is not None and (step % report_every == 0 or step == steps):
                elapsed = time.perf_counter() - started
                left = elapsed / step * (steps - step)
                progress(
                    f"  fine-tuning: step {step}/{steps}, loss {loss.item():.3f}, "
                    f"{elapsed:.0f} s elapsed, ~{math.ceil(left)} s left"
                )
    model.eval()
    return model


def _freeze_below(model: Any, top_layers: int) -> list[Any]:
    """Freeze the word embeddings and all but the top ``top_layers`` layers (0: train all).

    Why: on two shared cores a full step costs seconds; with the embeddings (half of MiniLM's
    parameters) and the lower layers frozen, backward stops early and the optimiser updates a
    fraction of the weights, about 1.5x faster per step, and the general-purpose lower layers
    are kept as they are.
    """
    backbone = model[0].auto_model
    for parameter in backbone.embeddings.parameters():
        parameter.requires_grad = False
    layers = list(backbone.encoder.layer)
    if top_layers:
        for layer in layers[: max(0, len(layers) - top_layers)]:
            for parameter in layer.parameters():
                parameter.requires_grad = False
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def _embed(model: Any, texts: list[str]) -> Any:
    import torch

    # sentence-transformers 6 renamed tokenize to preprocess (the old name warns).
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    features = tokenize(texts)
    embeddings = model(features)["sentence_embedding"]
    return torch.nn.functional.normalize(embeddings, dim=1)
