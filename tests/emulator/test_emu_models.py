"""``GET /v1/models``: the price book's models, paged as the API pages them."""

from __future__ import annotations

import anthropic
import pytest
from conftest import body_of

from tiergate.core.prices import load_price_book


def test_models_list_pages_through_the_price_book(client: anthropic.Anthropic) -> None:
    book = load_price_book(use_env=False)
    first = client.models.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    assert first.first_id == first.data[0].id and first.last_id == first.data[1].id
    walked = [model.id for model in client.models.list(limit=2)]  # the SDK follows last_id
    assert walked == [model.id for model in client.models.list(limit=1000)]
    assert sorted(walked) == sorted(book.models)
    after = client.models.list(limit=3, after_id=walked[1])
    assert [model.id for model in after.data] == walked[2:5]
    before = client.models.list(limit=2, before_id=walked[4])
    assert [model.id for model in before.data] == walked[2:4] and before.has_more


def test_a_model_object_has_the_api_fields(client: anthropic.Anthropic) -> None:
    haiku = client.models.retrieve("claude-haiku-4-5-20251001")
    assert haiku.id == "claude-haiku-4-5" and haiku.type == "model"
    assert haiku.display_name == "Claude Haiku 4.5"
    assert haiku.created_at.year == 2025 and haiku.created_at.month == 10
    assert haiku.lifecycle == "active" and haiku.max_input_tokens == 200_000
    assert client.models.retrieve("claude-sonnet-4-5").lifecycle == "deprecated"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nothing-1")


def test_lifecycle_filters_and_limit_is_checked(client: anthropic.Anthropic) -> None:
    deprecated = client.models.list(lifecycle=["deprecated"])
    assert [model.id for model in deprecated.data] == ["claude-sonnet-4-5"]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.models.list(limit=0)
    assert "limit" in body_of(caught.value)["error"]["message"]
