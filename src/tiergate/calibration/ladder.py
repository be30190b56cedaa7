"""Certify a ladder: which tiers to run and where each accepts, inside the error budget.

The promise is about *all* accepted answers: with probability at least ``1 - delta``, at most
``budget`` of them are wrong (for new tickets exchangeable with the calibration tickets). Pure:
numpy/scipy, no I/O. The routing layer turns recorded answers into the evidence used here.

Evidence
    Every tier of the route answered the same held-out tickets (:class:`TierEvidence`: calibrated
    P(correct), right or wrong, cost per ticket). The free first tier (the local model) may
    bring many more rows of its own (:class:`OwnEvidence`: out-of-fold scores on the training
    data), because its answers cost nothing; the paid tiers keep the held-out tickets.

Families
    A *family* is a sub-ladder the route could run (the tiers in their order, any below the top
    skipped: no local tier, no Haiku, the top tier alone; the top tier stays, it answers what
    nothing below could; and the free tier alone) and, where the free tier sits below paid ones,
    a multiple ``m`` of the paid tiers' error it may take. Each family walks one path of
    thresholds: the paid tiers share a threshold ``t`` on calibrated P(correct), the free tier
    accepts at ``1 - m (1 - t)``. The path runs from strict to loose, in an order fixed by the
    scores alone. Walks start at three points, where 10%, 25% and 50% of the family's rows are
    accepted, each with a third of the family's delta (the strictest candidates accept too few
    answers to certify anything, and one unlucky error near a single start would end the
    family); a walk that reaches the next start passes its level on (the fallback procedure,
    which controls the family-wise error at the family's delta). The starts do not depend on the
    budget, so the walks at two budgets are the same walks stopped at different places.

Certificates (per candidate on a path; the first that exceeds the budget ends the walk, as in
fixed-sequence testing, so each family controls its error at its share ``delta / families``)
    - paid tiers only: the one-sided Clopper-Pearson upper bound on the error of the accepted
      held-out answers;
    - the free tier alone: the same bound on its own rows (held-out plus out-of-fold);
    - the free tier below paid tiers: the smaller of two bounds, each at half the level. One is
      the bound on the accepted held-out answers, as above. The other is *stratified*: the free
      tier's stratum is measured on its own rows, the paid tiers' stratum on the held-out
      tickets the free tier passed on. With ``e_F``, ``e_P`` the error rates of the two strata
      and ``s`` the free tier's share of accepted answers, the error of all accepted answers is
      ``s e_F + (1 - s) e_P``; bounding ``e_F`` and ``e_P`` from above and ``s`` within an
      interval (six Clopper-Pearson bounds at a sixth of the level each: the two error rates and
      both ends of each stratum's acceptance rate) bounds the mixture, which is linear in ``s``
      so the worst case is at an end of the interval. The strata win when the free tier's own
      rows are many; the held-out bound wins when the paid tiers accept few answers.

Choosing among certified candidates
    A candidate's *entry budget* is the smallest budget at which one of its family's walks
    reaches it (the running maximum of the bounds along that walk). At a budget, every
    candidate whose entry budget is within it is certified; the choice is the cheapest of them,
    where a ticket no tier accepts costs ``unaccepted_cost`` on top of what the tiers charged
    for it (ties: the one accepting more). So a looser budget never costs more, a free ladder
    (whose only cost is what it leaves unaccepted) never accepts less, and the choice is never
    dearer than a certified configuration accepting as much. A paid ladder may accept a little
    less at a looser budget when that is cheaper by more than ``unaccepted_cost`` per ticket
    given up: insisting on never accepting less makes the choice depend on which candidate
    happened to be certified first at stricter budgets, which on BANKING77 (route seed 4)
    kept Haiku -> Sonnet over a local -> Haiku -> Sonnet ladder half its price.
    All families together hold the guarantee at ``delta`` (Bonferroni over the families)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tiergate.calibration.bounds import clopper_pearson_lower_many, clopper_pearson_upper_many

ACCEPT_NOTHING = math.inf
MAX_CANDIDATES = 400
# How many times the paid tiers' error the free tier may take where it sits below them.
FREE_ERROR_MULTIPLES = (1.0, 2.0, 4.0, 8.0)
# Walks start where these shares of a family's rows are accepted, each at a third of the
# family's delta; a walk that reaches the next start passes its level on (the fallback
# procedure), so an unlucky error near one start does not end the family.
START_SHARES = (0.1, 0.25, 0.5)


@dataclass(frozen=True)
class TierEvidence:
    """One tier on the held-out tickets (rows aligned across tiers)."""

    name: str
    scores: NDArray[np.float64]  # calibrated P(correct); -inf where the answer was unusable
    correct: NDArray[np.bool_]
    costs: NDArray[np.float64]  # what asking this tier cost, per ticket
    free: bool = False


@dataclass(frozen=True)
class OwnEvidence:
    """More rows for the free first tier alone (e.g. out-of-fold scores on its training data)."""

    scores: NDArray[np.float64]
    correct: NDArray[np.bool_]


@dataclass(frozen=True)
class Family:
    tiers: tuple[int, ...]  # indices into the route's tiers, in ladder order
    free_multiple: float = 1.0

    def names(self, tiers: Sequence[TierEvidence]) -> tuple[str, ...]:
        return tuple(tiers[index].name for index in self.tiers)


@dataclass(frozen=True)
class Candidate:
    family: Family
    thresholds: tuple[float, ...]  # aligned with family.tiers
    entry_budget: float  # the smallest budget whose walk reaches this candidate
    bound: float  # the certificate at this candidate
    accepted: int  # held-out tickets accepted
    errors: int  # of them wrong
    cost_usd: float  # what the held-out tickets cost under this candidate
    tickets: int

    def objective(self, unaccepted_cost: float) -> float:
        return self.cost_usd + unaccepted_cost * (self.tickets - self.accepted)

    @property
    def accepted_share(self) -> float:
        return self.accepted / self.tickets if self.tickets else 0.0


@dataclass(frozen=True)
class LadderFit:
    budget: float
    delta: float
    chosen: Candidate | None  # None: nothing can be certified, accept nothing
    full_cost_usd: float  # every tier asked on every held-out ticket (what accepting nothing costs)
    tickets: int
    families: dict[Family, Candidate | None] = field(default_factory=dict)  # each one's best


@dataclass(frozen=True)
class Walks:
    """Every family's certified path, computed once and reusable for any budget."""

    tiers: tuple[TierEvidence, ...]
    delta: float
    candidates: tuple[Candidate, ...]  # every family's, in order of entry budget
    families: tuple[Family, ...]
    full_cost_usd: float
    tickets: int

    def fit(self, budget: float, unaccepted_cost: float) -> LadderFit:
        """The cheapest certified candidate at ``budget`` (see the module docstring)."""
        chosen: Candidate | None = None
        best: dict[Family, Candidate | None] = dict.fromkeys(self.families)
        for candidate in self.candidates:
            if candidate.entry_budget > budget:
                break  # in order of entry budget
            # A family's best: the one accepting most (then the cheaper).
            held = best[candidate.family]
            if held is None or (candidate.accepted, -candidate.cost_usd) > (
                held.accepted,
                -held.cost_usd,
            ):
                best[candidate.family] = candidate
            if chosen is None or (
                candidate.objective(unaccepted_cost),
                -candidate.accepted,
            ) < (chosen.objective(unaccepted_cost), -chosen.accepted):
                chosen = candidate
        return LadderFit(budget, self.delta, chosen, self.full_cost_usd, self.tickets, best)


def families_of(tiers: Sequence[TierEvidence], *, whole: bool = False) -> list[Family]:
    """Every sub-ladder that ends with the top tier (any tier below it skipped), with the free
    tier's error multiples, and the free tier alone. The top tier stays otherwise: it answers
    what nothing below could, and in ``flag`` mode its answer is the one returned unaccepted.
    The free tier alone is what a small calibration set can certify when the paid tiers'
    stratum is too small to bound. ``whole``: only the whole ladder (a tier's evidence reads
    the answers of the tiers below it, so none may be skipped)."""
    found: list[Family] = []
    top = len(tiers) - 1
    if whole:
        every = tuple(range(len(tiers)))
        if tiers[0].free and top > 0:
            return [Family(every, multiple) for multiple in FREE_ERROR_MULTIPLES]
        return [Family(every)]
    for size in range(len(tiers), 0, -1):
        for below in itertools.combinations(range(top), size - 1):
            subset = (*below, top)
            if tiers[subset[0]].free and len(subset) > 1:
                found += [Family(subset, multiple) for multiple in FREE_ERROR_MULTIPLES]
            else:
                found.append(Family(subset))
    if tiers[0].free and top > 0:
        found.append(Family((0,)))
    return found


def walk_all(
    tiers: Sequence[TierEvidence],
    delta: float,
    own: OwnEvidence | None = None,
    *,
    max_candidates: int = MAX_CANDIDATES,
    whole: bool = False,
) -> Walks:
    """Walk every family's path once; :meth:`Walks.fit` then chooses for any budget
    (``whole``: the whole ladder's families only, see :func:`families_of`)."""
    if not tiers:
        raise ValueError("a ladder needs at least one tier")
    count = len(tiers[0].scores)
    if any(len(t.scores) != count or len(t.correct) != count for t in tiers):
        raise ValueError("every tier needs one score and one flag per held-out ticket")
    if any(t.free for t in tiers[1:]):
        raise ValueError("only the first tier may be free")
    families = families_of(tiers, whole=whole)
    share = delta / len(families)
    candidates: list[Candidate] = []
    for family in families:
        candidates += _walk(tiers, family, share, own, max_candidates)
    candidates.sort(key=lambda c: c.entry_budget)
    full_cost = float(sum(t.costs.sum() for t in tiers))
    return Walks(tuple(tiers), delta, tuple(candidates), tuple(families), full_cost, count)


def certify_ladder(
    tiers: Sequence[TierEvidence],
    budget: float,
    delta: float,
    own: OwnEvidence | None = None,
    *,
    unaccepted_cost: float,
) -> LadderFit:
    return walk_all(tiers, delta, own).fit(budget, unaccepted_cost)


@dataclass(frozen=True)
class _Outcome:
    accepted: NDArray[np.bool_]
    wrong: NDArray[np.bool_]
    first: NDArray[np.intp]
    cost: float


def _replay(
    scores: NDArray[np.float64],
    correct: NDArray[np.bool_],
    costs: NDArray[np.float64],
    thresholds: NDArray[np.float64],
) -> _Outcome:
    """Tickets x tiers: each ticket is accepted by the first tier whose score reaches its
    threshold; it pays every tier up to that one (or all of them)."""
    accepts = scores >= thresholds[None, :]
    accepted: NDArray[np.bool_] = np.asarray(accepts.any(axis=1), dtype=bool)
    first = accepts.argmax(axis=1)
    rows = np.arange(scores.shape[0])
    wrong = accepted & ~correct[rows, first]
    stop = np.where(accepted, first, scores.shape[1] - 1)
    paid = np.cumsum(costs, axis=1)[rows, stop]
    return _Outcome(accepted, wrong, first, float(paid.sum()))


def _path(values: NDArray[np.float64], max_candidates: int) -> NDArray[np.float64]:
    """Distinct values from strictest (highest) to loosest, at most ``max_candidates``, evenly
    spread, always keeping the loosest."""
    finite = np.unique(values[np.isfinite(values)])[::-1]
    if finite.size <= max_candidates:
        return finite
    picks = np.unique(np.linspace(0, finite.size - 1, max_candidates).round().astype(np.intp))
    return finite[picks]


@dataclass(frozen=True)
class _Counts:
    """What the certificates need, one entry per candidate of a path (see :func:`_bounds`)."""

    errors: NDArray[np.float64]  # paid-only / free-only: among accepted; mixed: free stratum's
    accepted: NDArray[np.float64]
    rows: float  # mixed: the free tier's rows
    paid_errors: NDArray[np.float64]  # mixed only: the paid stratum on the held-out tickets
    paid_accepted: NDArray[np.float64]
    tickets: float
    held_errors: NDArray[np.float64]  # mixed only: every accepted held-out answer
    held_accepted: NDArray[np.float64]
    mixed: bool


def _bounds(counts: _Counts, level: float) -> NDArray[np.float64]:
    if not counts.mixed:
        return clopper_pearson_upper_many(counts.errors, counts.accepted, level)
    # Two valid bounds, each at half the level: the held-out tickets alone, or the strata. The
    # strata win when the free tier's own rows are many; the held-out bound when the paid
    # tiers accept few answers (a stratum of a few dozen has a loose bound of its own).
    half = level / 2
    held = clopper_pearson_upper_many(counts.held_errors, counts.held_accepted, half)
    return np.asarray(np.minimum(held, _stratified_bounds(counts, half)))


def _walk(
    tiers: Sequence[TierEvidence],
    family: Family,
    delta: float,
    own: OwnEvidence | None,
    max_candidates: int,
) -> list[Candidate]:
    """The family's candidates with their entry budgets, walking from every start point."""
    members = [tiers[index] for index in family.tiers]
    scores = np.column_stack([t.scores for t in members])
    correct = np.column_stack([t.correct for t in members])
    costs = np.column_stack([t.costs for t in members])
    count = scores.shape[0]
    free = members[0].free
    multiple = family.free_multiple
    # The free tier's rows: its own evidence and the held-out tickets.
    free_scores: NDArray[np.float64] = np.zeros(0)
    free_correct: NDArray[np.bool_] = np.zeros(0, dtype=bool)
    if free:
        free_scores = members[0].scores
        free_correct = members[0].correct
        if own is not None:
            free_scores = np.concatenate([own.scores, free_scores])
            free_correct = np.concatenate([own.correct, free_correct])
    values = [scores[:, 1:].ravel() if free else scores.ravel()]
    if free:
        values.append(1.0 - (1.0 - free_scores) / multiple)
    alone = free and len(members) == 1
    rows = free_scores.size if alone else count
    points: list[tuple[NDArray[np.float64], _Outcome]] = []
    # errors, accepted, paid errors, paid accepted, held-out errors, held-out accepted
    columns: list[tuple[int, int, int, int, int, int]] = []
    for t in _path(np.concatenate(values), max_candidates):
        thresholds = np.full(len(members), t)
        if free:
            thresholds[0] = 1.0 - multiple * (1.0 - t)
        outcome = _replay(scores, correct, costs, thresholds)
        if free:
            taken = free_scores >= thresholds[0]
            paid = outcome.accepted & (outcome.first > 0)
            columns.append(
                (
                    int((taken & ~free_correct).sum()),
                    int(taken.sum()),
                    int((outcome.wrong & paid).sum()),
                    int(paid.sum()),
                    int(outcome.wrong.sum()),
                    int(outcome.accepted.sum()),
                )
            )
        else:
            held = (int(outcome.wrong.sum()), int(outcome.accepted.sum()))
            columns.append((*held, 0, 0, *held))
        points.append((thresholds, outcome))
    table = np.array(columns, dtype=np.float64).reshape(-1, 6)
    counts = _Counts(
        table[:, 0],
        table[:, 1],
        float(free_scores.size),
        table[:, 2],
        table[:, 3],
        float(count),
        table[:, 4],
        table[:, 5],
        mixed=free and not alone,
    )
    reach = table[:, 1] if alone else np.array([o.accepted.sum() for _, o in points])
    anchors = _anchors(reach.tolist(), rows)
    level = delta / len(START_SHARES)
    by_level = {k: _bounds(counts, level * k) for k in range(1, len(anchors) + 1)}
    entries = [math.inf] * len(points)
    bounds = [1.0] * len(points)
    for anchor in sorted(anchors):
        running, passed = 0.0, 0
        for index in range(anchor, len(points)):
            if index in anchors:
                passed += 1  # the fallback procedure: a start reached passes its level on
            bound = float(by_level[passed][index])
            running = max(running, bound)
            if running < entries[index]:
                entries[index], bounds[index] = running, bound
    found: list[Candidate] = []
    for (thresholds, outcome), entry, bound in zip(points, entries, bounds, strict=True):
        if math.isfinite(entry):
            found.append(
                Candidate(
                    family,
                    tuple(float(x) for x in thresholds),
                    entry,
                    bound,
                    int(outcome.accepted.sum()),
                    int(outcome.wrong.sum()),
                    outcome.cost,
                    count,
                )
            )
    return found


def _anchors(reach: Sequence[float], rows: int) -> set[int]:
    """Where walks start: the first candidate accepting each share of START_SHARES of the rows
    (the path accepts more at every step, so each share has one first candidate)."""
    anchors: set[int] = set()
    for share in START_SHARES:
        wanted = math.ceil(share * rows)
        index = next((i for i, value in enumerate(reach) if value >= wanted), None)
        if index is not None:
            anchors.add(index)
    return anchors


def _stratified_bounds(counts: _Counts, level: float) -> NDArray[np.float64]:
    """Upper bound on the error of all accepted answers, the free tier's stratum measured on its
    own rows and the paid tiers' on the held-out tickets (module docstring)."""
    sixth = level / 6
    free_error = clopper_pearson_upper_many(counts.errors, counts.accepted, sixth)
    paid_error = clopper_pearson_upper_many(counts.paid_errors, counts.paid_accepted, sixth)
    # The free tier's share of accepted answers lies between two bounds built from the bounds on
    # each stratum's acceptance rate.
    free_low = clopper_pearson_lower_many(counts.accepted, counts.rows, sixth)
    free_high = clopper_pearson_upper_many(counts.accepted, counts.rows, sixth)
    paid_low = clopper_pearson_lower_many(counts.paid_accepted, counts.tickets, sixth)
    paid_high = clopper_pearson_upper_many(counts.paid_accepted, counts.tickets, sixth)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_low = np.where(free_low > 0, free_low / (free_low + paid_high), 0.0)
        share_high = np.where(free_high > 0, free_high / (free_high + paid_low), 0.0)
    # Linear in the share: the worst case is at one end of its interval.
    return np.asarray(
        np.maximum(
            share_low * free_error + (1.0 - share_low) * paid_error,
            share_high * free_error + (1.0 - share_high) * paid_error,
        )
    )
