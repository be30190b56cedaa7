"""The kinds of gateway route, one model each, as the config's ``routes:`` mapping gives them.

    routes:
      auto:    {kind: rules, tiers: {cheap: MODEL, strong: MODEL}, default: cheap, rules: [...]}
      tickets: {kind: classify, route: banking77/route.yaml}      # any task kind (tasks.TASKS)
      chat:    {kind: learned, router: out/router, tiers: {cheap: MODEL, strong: MODEL}}
      agents:  {kind: agent, tiers: {cheap: MODEL, strong: MODEL}, policy: bfcl/route.yaml,
                strong_when: {first_turn: true, input_tokens_over: 50000}}

A route is named by its key. :func:`route_model` maps ``kind`` to its model (:data:`KINDS`
lists them); a task kind (``classify``, ...) is answered by the engine from a route file.
Adding a kind is a model here and a line in :func:`route_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from tiergate.gateway.config_fields import ConfigPath, Section
from tiergate.tasks import TASKS
from tiergate.validation import FieldProblem

RULES: Literal["rules"] = "rules"
LEARNED: Literal["learned"] = "learned"
AGENT: Literal["agent"] = "agent"
Condition = Literal["input_tokens_over", "marked", "max_tokens_at_most", "assistant_prefill"]


class When(Section):
    """One condition (see ``gateway/rules.py``)."""

    input_tokens_over: PositiveInt | None = None
    marked: str | None = Field(default=None, min_length=1)
    max_tokens_at_most: PositiveInt | None = None
    assistant_prefill: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> When:
        if len(self.model_fields_set) != 1:
            raise ValueError(
                f"expected exactly one condition of {', '.join(type(self).model_fields)}"
            )
        return self


class Rule(Section):
    """``when`` (one condition) sends the request to ``tier``."""

    when: When
    tier: str

    @property
    def condition(self) -> str:
        return next(iter(self.when.model_fields_set))

    @property
    def value(self) -> Any:
        return getattr(self.when, self.condition)


class RulesRoute(Section):
    name: str = ""
    kind: Literal["rules"] = RULES
    tiers: dict[str, str] = Field(min_length=1)  # tier name -> model id
    default: str  # the first tier when not given
    rules: tuple[Rule, ...] = ()

    @property
    def strong(self) -> str:
        return self.tiers.get("strong", self.tiers[self.default])

    @model_validator(mode="before")
    @classmethod
    def _default_is_the_first_tier(cls, data: Any) -> Any:
        if isinstance(data, dict) and "default" not in data and isinstance(data.get("tiers"), dict):
            return {**data, "default": next(iter(data["tiers"]), "")}
        return data

    @model_validator(mode="after")
    def _tiers_named(self) -> RulesRoute:
        names = ", ".join(self.tiers)
        if self.default not in self.tiers:
            raise FieldProblem(("default",), f"{self.default!r} is not one of its tiers ({names})")
        for index, rule in enumerate(self.rules):
            if rule.tier not in self.tiers:
                raise FieldProblem(
                    ("rules", index, "tier"),
                    f"tier {rule.tier!r} is not one of the route's tiers ({names})",
                )
        return self


class ClassifyRoute(Section):
    """A route answered by the engine: a route file of any task kind (classify, extract, ...);
    ``kind`` names the task the route file must have. The file is loaded (and so checked) with
    the config."""

    name: str = ""
    kind: str = "classify"
    route_file: ConfigPath = Field(alias="route")
    concurrency: PositiveInt = 32

    @model_validator(mode="after")
    def _route_file_fits(self) -> ClassifyRoute:
        from tiergate.routing.route import load_route

        if self.kind == "tool":  # its items are whole requests, not a text
            raise FieldProblem(
                ("kind",), f"a tool route is served as `kind: agent, policy: {self.route_file}`"
            )
        try:
            route = load_route(self.route_file)
        except Exception as error:  # a RouteError names the route file and its field
            raise FieldProblem(("route",), str(error)) from None
        if route.task.kind != self.kind:
            raise FieldProblem(
                ("kind",), f"{self.kind} but {self.route_file} has `task: {route.task.kind}`"
            )
        return self


class LearnedTiers(Section):
    cheap: str
    strong: str


class LearnedRoute(Section):
    """A pre-call router (``tiergate router train``) picks the cheap or the strong model from
    the prompt alone; the artifact must exist when the config is loaded."""

    name: str = ""
    kind: Literal["learned"] = LEARNED
    router: ConfigPath
    tiers: LearnedTiers

    @field_validator("router")
    @classmethod
    def _trained(cls, router: Any, info: ValidationInfo) -> Any:
        from tiergate.gateway.learned import check_artifact

        check_artifact(router)
        return router


class StrongWhen(Section):
    """Agent turns sent straight to the strong tier."""

    first_turn: bool = False
    input_tokens_over: PositiveInt | None = None


class AgentRoute(Section):
    """Agent turns (requests with ``tools``) tiered by a calibrated tool-decision policy
    (``tiergate.gateway.agent``); ``policy`` is a ``task: tool`` route file. Without a policy
    every turn goes to the strong tier unchanged."""

    name: str = ""
    kind: Literal["agent"] = AGENT
    tiers: LearnedTiers
    policy: ConfigPath | None = None
    strong_when: StrongWhen = Field(default_factory=lambda: StrongWhen())

    @property
    def cheap(self) -> str:
        return self.tiers.cheap

    @property
    def strong(self) -> str:
        return self.tiers.strong

    @property
    def strong_first_turn(self) -> bool:
        return self.strong_when.first_turn

    @property
    def strong_input_tokens_over(self) -> int | None:
        return self.strong_when.input_tokens_over


RouteConfig = RulesRoute | ClassifyRoute | LearnedRoute | AgentRoute
# A tool route's items are whole requests: it is served by `kind: agent`, so not offered here.
KINDS = (RULES, *(kind for kind in TASKS if kind != "tool"), LEARNED, AGENT)


def route_model(kind: Any) -> type[RouteConfig] | None:
    """The model of a route kind, or None for a kind the gateway does not know."""
    if kind == RULES:
        return RulesRoute
    if kind == LEARNED:
        return LearnedRoute
    if kind == AGENT:
        return AgentRoute
    if isinstance(kind, str) and kind in TASKS:
        return ClassifyRoute
    return None


def route_kind(body: Mapping[str, Any]) -> Any:
    return body.get("kind", RULES)
