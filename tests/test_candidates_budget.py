"""``candidates_max_combinations``: the combination budget of one candidates request.

In-process (fast): the live-server cases are in ``test_candidates_bounded``.
"""

import pytest

from app.settings import Settings
from tests.api_helpers import ADMIN_LATEST, app_client, make_provider

# 4 children x 3 groups: 4**3 = 64 combinations (plus the partial ones).
QUERY = "resources1=VCPU:1&resources2=VCPU:1&resources3=VCPU:1&group_policy=none"


async def _answer(settings: Settings, budget: int, query: str) -> tuple[int, dict[str, object]]:
    configured = settings.model_copy(update={"candidates_max_combinations": budget})
    async with app_client(configured, ADMIN_LATEST) as client:
        root = await make_provider(client, name="root")
        for index in range(4):
            await make_provider(client, {"VCPU": {"total": 8}}, name=f"c{index}", parent=root)
        response = await client.get("/allocation_candidates?" + query)
        return response.status_code, response.json()


@pytest.mark.parametrize("budget", [-1, 200])
async def test_within_budget_answers_every_combination(settings: Settings, budget: int) -> None:
    status, body = await _answer(settings, budget, QUERY)
    assert status == 200
    assert isinstance(body["allocation_requests"], list)
    # group_policy=none: every ordered choice of a child per group, as distinct requests
    # once amounts on the same child add up (4 one-child + 36 two-child + 24 three-child).
    assert len(body["allocation_requests"]) == 64


async def test_past_budget_is_refused_in_the_error_format(settings: Settings) -> None:
    status, body = await _answer(settings, 20, QUERY)
    assert status == 400
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors[0]["code"] == "placement.query.bad_value"
    assert "more than 20 combinations" in errors[0]["detail"]


async def test_limit_stops_before_the_budget(settings: Settings) -> None:
    status, body = await _answer(settings, 20, QUERY + "&limit=3")
    assert status == 200
    assert isinstance(body["allocation_requests"], list)
    assert len(body["allocation_requests"]) == 3
