"""``GET /v1/models`` and ``GET /v1/models/{id}``: this gateway's routes and the price book's
models, in the Models API's shape, so clients that list or look up models (the SDK's
``models.list()``, model pickers) work against the gateway as against the API.

Routes come first; each says in ``display_name`` that it is a tiergate route and what it
routes between. Paging (``limit``, ``after_id``, ``before_id``) and the ``lifecycle`` filter
work as the API's; an id neither a route nor in the price book is a 404.
"""

from __future__ import annotations

from typing import Any

import orjson

from tiergate.api_errors import AnthropicError
from tiergate.api_lists import parse_list_query
from tiergate.api_models import EPOCH, listing, retrieve
from tiergate.gateway.asgi import JSON, Receive, Scope, Send, respond
from tiergate.gateway.config import ClassifyRoute, LearnedRoute, RouteConfig, RulesRoute
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.services import Request, Services

MODEL_PATH_PREFIX = "/v1/models/"


async def handle_models(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    try:
        query = parse_list_query(scope.get("query_string", b""))
        page = listing(services.book, query, first=route_objects(services))
    except AnthropicError as error:
        raise GatewayError(error.status, error.message) from None
    await respond(send, 200, orjson.dumps(page), request.request_id, (), JSON)


async def handle_model(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    model_id = scope["path"].removeprefix(MODEL_PATH_PREFIX)
    route = services.config.routes.get(model_id)
    if route is not None:
        found = route_object(services, model_id, route)
    else:
        try:
            found = retrieve(services.book, model_id)
        except AnthropicError:
            raise GatewayError(
                404, f"model: {model_id!r} is neither a route of this gateway nor a known model"
            ) from None
    await respond(send, 200, orjson.dumps(found), request.request_id, (), JSON)


def route_objects(services: Services) -> list[dict[str, Any]]:
    routes = services.config.routes
    return [route_object(services, name, routes[name]) for name in sorted(routes)]


def route_object(services: Services, name: str, route: RouteConfig) -> dict[str, Any]:
    """A route as a ``ModelInfo``: its context is the smallest of the models it may call."""
    models = _models_of(route)
    windows = [
        services.book.get(model).context_window for model in models if model in services.book
    ]
    return {
        "type": "model",
        "id": name,
        "display_name": f"tiergate route {name}: {_described(route)}",
        "created_at": EPOCH,
        "lifecycle": "active",
        "line": None,
        "max_input_tokens": min(windows) if windows else None,
    }


def _models_of(route: RouteConfig) -> list[str]:
    if isinstance(route, RulesRoute):
        return list(route.tiers.values())
    if isinstance(route, LearnedRoute):
        return [route.tiers.cheap, route.tiers.strong]
    return []


def _described(route: RouteConfig) -> str:
    if isinstance(route, RulesRoute):
        tiers = ", ".join(f"{tier} {model}" for tier, model in route.tiers.items())
        return f"rules over {tiers}"
    if isinstance(route, ClassifyRoute):
        return f"classification ({route.route_file.name})"
    if isinstance(route, LearnedRoute):
        return f"learned router over cheap {route.tiers.cheap}, strong {route.tiers.strong}"
    return type(route).__name__
