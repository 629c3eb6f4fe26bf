"""`POST /v1/optimize` through the gateway."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import Demo


async def post(demo: Demo, body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.post(f"{demo.url}/v1/optimize", json=body) as r:
        return r.status, await r.json()


async def test_optimizes_and_reports_the_saving(demo: Demo) -> None:
    prompt = "Could you please basically tell me what a channel is? Could you please basically tell me what a channel is?"
    status, out = await post(demo, {"prompt": prompt, "similarity_threshold": 0.5})
    assert status == 200
    assert set(out) == {
        "optimized_prompt",
        "original_tokens",
        "compressed_tokens",
        "tokens_saved",
        "similarity_score",
        "steps",
    }
    assert out["optimized_prompt"] == "Tell me what a channel is?"
    assert out["tokens_saved"] == out["original_tokens"] - out["compressed_tokens"] > 0
    assert 0.5 <= out["similarity_score"] <= 1
    assert not demo.sim.received  # no upstream is called


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": "hi", "similarity_threshold": 1.5}, "similarity_threshold"),
        ({"prompt": "hi", "similarity_threshold": True}, "similarity_threshold"),
        ({"prompt": "hi", "extra": 1}, "extra"),
        (["hi"], None),
    ],
)
async def test_bad_input_is_a_400_in_the_envelope(demo: Demo, body: object, param: str | None) -> None:
    status, out = await post(demo, body)
    assert status == 400
    assert set(out["error"]) == {"message", "type", "code", "param"} and out["error"]["param"] == param
