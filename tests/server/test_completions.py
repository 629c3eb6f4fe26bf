"""Legacy `POST /v1/completions` with the openai SDK (`client.completions.create`), translated to chat and
routed to every upstream format, streamed and not; and token-array inputs (a prompt, embeddings)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from faregate.accounting.tokens import TokenCounter
from tests.conftest import Demo
from tests.server.helpers import check_accounting, decimal_json
from tests.server.translation_helpers import APIS, UPSTREAMS, last_body, oai, sent_to

PROMPT = "Once upon a time"


@pytest.mark.parametrize("api", APIS)
async def test_completions_create_on_every_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with oai(demo) as c:
        raw = await c.completions.with_raw_response.create(model=up.model, prompt=PROMPT, max_tokens=60)
    done = raw.parse()
    body = decimal_json(raw.http_response.text)
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    assert done.choices[0].text.startswith(up.head) and PROMPT in done.choices[0].text
    assert done.choices[0].finish_reason in ("stop", "length")
    check_accounting(demo, body, raw.headers)
    assert raw.headers["X-Faregate-Provider"] == up.provider
    async with aiohttp.ClientSession() as s, s.get(f"{demo.url}/v1/requests/{done.id}") as r:
        assert r.status == 200 and (await r.json())["endpoint"] == "completions"


@pytest.mark.parametrize("api", APIS)
async def test_streamed_completions_on_every_upstream(demo: Demo, api: str) -> None:
    up = UPSTREAMS[api]
    async with oai(demo) as c:
        stream = await c.completions.create(
            model=up.model, prompt=PROMPT, max_tokens=60, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text.startswith(up.head)
    assert len({ch.id for ch in chunks}) == 1 and chunks[0].id.startswith("cmpl-")
    finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finish in (["stop"], ["length"])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    async with oai(demo) as c:
        plain = await c.completions.create(model=up.model, prompt=PROMPT, max_tokens=60)
    assert plain.choices[0].text == text  # the simulator answers the same prompt the same way


async def test_defaults_echo_and_fields_chat_cannot_carry(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    async with oai(demo) as c:
        raw = await c.completions.with_raw_response.create(
            model=up.model, prompt=PROMPT, echo=True, suffix="The end.", best_of=2, seed=3
        )
    done = raw.parse()
    assert done.choices[0].text.startswith(PROMPT + up.head)
    sent = last_body(demo, up)
    assert sent["messages"] == [{"role": "user", "content": PROMPT}]
    assert sent["max_tokens"] == 16  # OpenAI's default for completions
    assert sent["seed"] == 3 and not {"suffix", "best_of", "echo", "prompt"} & set(sent)
    dropped = json.loads(raw.http_response.text)["x-faregate"]["routing"]["dropped_params"]
    assert {"suffix", "best_of"} <= set(dropped)
    async with oai(demo) as c:
        stream = await c.completions.create(model=up.model, prompt=PROMPT, echo=True, stream=True)
        chunks = [ch async for ch in stream]
    assert chunks[0].choices[0].text == PROMPT


async def test_n_and_logprobs_from_an_openai_upstream(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    async with oai(demo) as c:
        done = await c.completions.create(model=up.model, prompt=PROMPT, n=2, logprobs=2, max_tokens=30)
    assert [ch.index for ch in done.choices] == [0, 1]
    lp = done.choices[0].logprobs
    assert lp is not None and lp.tokens and "".join(lp.tokens) == done.choices[0].text
    assert lp.token_logprobs and len(lp.token_logprobs) == len(lp.tokens)
    assert lp.top_logprobs and all(len(t) <= 2 for t in lp.top_logprobs)
    assert lp.text_offset and lp.text_offset[0] == 0
    sent = last_body(demo, up)
    assert (sent["n"], sent["logprobs"], sent["top_logprobs"]) == (2, True, 2)


async def test_n_and_logprobs_streamed(demo: Demo) -> None:
    up = UPSTREAMS["openai"]
    async with oai(demo) as c:
        stream = await c.completions.create(
            model=up.model, prompt=PROMPT, n=2, logprobs=1, max_tokens=30, echo=True, stream=True
        )
        chunks = [ch async for ch in stream]
        plain = await c.completions.create(model=up.model, prompt=PROMPT, n=2, logprobs=1, max_tokens=30)
    text = {0: "", 1: ""}
    for ch in chunks:
        for choice in ch.choices:
            text[choice.index] += choice.text
            lp = choice.logprobs
            if lp is not None and lp.tokens:
                assert lp.text_offset and lp.text_offset[0] == len(text[choice.index]) - len(choice.text)
    assert [PROMPT + c.text for c in plain.choices] == [text[0], text[1]]


async def test_a_token_array_prompt(demo: Demo, counter: TokenCounter) -> None:
    up = UPSTREAMS["anthropic"]
    tokens = counter.encoding_for("").encode(PROMPT)
    async with oai(demo) as c:
        done = await c.completions.create(model=up.model, prompt=tokens, max_tokens=40)
        again = await c.completions.create(model=up.model, prompt=[tokens], max_tokens=40)
    assert done.choices[0].text == again.choices[0].text and PROMPT in done.choices[0].text
    assert last_body(demo, up)["messages"][0]["content"][0]["text"] == PROMPT


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "prompt"),
        ({"model": "auto", "prompt": ["one", "two"]}, "prompt"),
        ({"model": "auto", "prompt": [100256]}, "prompt"),
        ({"model": "auto", "prompt": {"x": 1}}, "prompt"),
        ({"model": "auto", "prompt": "x", "logprobs": 9}, "logprobs"),
        ({"model": "auto", "prompt": "x", "temperature": 5}, "temperature"),
    ],
)
async def test_bad_completions_requests(demo: Demo, body: dict[str, Any], param: str) -> None:
    before = sum(len(sent_to(demo, u)) for u in UPSTREAMS.values())
    async with aiohttp.ClientSession() as s, s.post(f"{demo.base_url}/completions", json=body) as r:
        data = await r.json()
    assert r.status == 400 and data["error"]["param"] == param, data
    assert sum(len(sent_to(demo, u)) for u in UPSTREAMS.values()) == before


# -- embeddings with token arrays ------------------------------------------------------------------------

EMBED_MODEL = "openai/text-embedding-3-small"


async def test_embeddings_take_token_arrays(demo: Demo, counter: TokenCounter) -> None:
    enc = counter.encoding_for(EMBED_MODEL)
    texts = ["The quick brown fox", "jumps over the lazy dog"]
    arrays = [enc.encode(t) for t in texts]
    async with oai(demo) as c:
        by_text = await c.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
        by_tokens = await c.embeddings.create(model=EMBED_MODEL, input=arrays, encoding_format="float")
        one = await c.embeddings.create(model=EMBED_MODEL, input=arrays[0], encoding_format="float")
    assert [d.embedding for d in by_tokens.data] == [d.embedding for d in by_text.data]
    assert one.data[0].embedding == by_text.data[0].embedding
    sent = [r.json() for r in demo.sim.received_for("openai") if r.path.endswith("/embeddings")][-1]
    assert sent["input"] in (texts[0], [texts[0]])
    async with aiohttp.ClientSession() as s:
        bad_inputs: list[Any] = [[[1, 2], "text"], [100256], [[]]]
        for bad in bad_inputs:
            body = {"model": EMBED_MODEL, "input": bad}
            async with s.post(f"{demo.base_url}/embeddings", json=body) as r:
                assert r.status == 400 and (await r.json())["error"]["param"] == "input"
