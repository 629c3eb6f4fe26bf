"""Arbitrary JSON bodies at every POST endpoint: the answer is a 2xx or a 4xx in the right envelope,
never a 500, and a request rejected as bad never reaches an upstream."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Demo

KEYS = [
    "model",
    "messages",
    "tools",
    "tool_choice",
    "response_format",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "provider",
    "models",
    "input",
    "system",
    "max_tokens",
    "n",
    "stop_sequences",
    "metadata",
    "dimensions",
    "encoding_format",
    "role",
    "content",
    "type",
]
scalars = (
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20)
)
values = st.recursive(
    scalars | st.sampled_from(["user", "assistant", "system", "tool", "auto", "openai/gpt-4o-mini", "text"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25,
)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=8) | values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/embeddings"]))
async def test_no_body_makes_a_server_error(demo: Demo, body: Any, path: str) -> None:
    demo.sim.reset_received()
    async with (
        aiohttp.ClientSession() as s,
        s.post(demo.url + path, data=json.dumps(body), headers={"x-api-key": "x"}) as r,
    ):
        status, text = r.status, await r.text()
    assert status < 500, (status, text[:300])
    if status >= 400:
        envelope = json.loads(text)
        if path == "/v1/messages":
            assert envelope["type"] == "error" and set(envelope["error"]) == {"type", "message"}
        else:
            assert set(envelope["error"]) == {"message", "type", "code", "param"}
        if status in (400, 404, 413, 422):
            assert not demo.sim.received, f"a rejected request reached an upstream: {demo.sim.received}"
