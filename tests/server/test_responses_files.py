"""`input_file` parts on `POST /v1/responses`, with the official `openai` SDK: a file by `file_url` or
`file_id` reaches an `api: openai-responses` upstream unchanged (routing keeps the request on such a
channel, as it does for built-in tools), an inline PDF also reaches the formats that read PDFs (Anthropic's
`document` block, Gemini's `inlineData`), and a file no channel of the plan can take is a 400 naming its
`param` before any upstream is called. faregate never fetches a file itself."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from tests.conftest import Demo
from tests.server.conftest import RESPONSES_MODEL
from tests.server.helpers import client, providers_called, upstream_bodies

ANTHROPIC = "anthropic/claude-haiku-4.5"
GEMINI = "google/gemini-2.5-flash-lite"
PDF_B64 = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF").decode()
BY_URL: Any = {"type": "input_file", "file_url": "https://example.com/report.pdf"}
BY_ID: Any = {"type": "input_file", "file_id": "file-abc123", "filename": "report.pdf"}
IMAGE_BY_ID: Any = {"type": "input_image", "file_id": "file-img123", "detail": "auto"}
PDF: Any = {
    "type": "input_file",
    "filename": "report.pdf",
    "file_data": f"data:application/pdf;base64,{PDF_B64}",
}


def with_file(part: Any) -> Any:
    return [{"role": "user", "content": [{"type": "input_text", "text": "Summarize this"}, part]}]


@pytest.mark.parametrize(
    "part", [BY_URL, BY_ID, PDF, IMAGE_BY_ID], ids=["file_url", "file_id", "file_data", "image_file_id"]
)
async def test_files_reach_a_responses_upstream_unchanged(responses_demo: Demo, part: Any) -> None:
    """`auto` routes a file by id or URL to the Responses channel only (an inline PDF, which Gemini reads
    too, is pinned there)."""
    model = RESPONSES_MODEL if part is PDF else "auto"
    async with client(responses_demo) as c:
        raw = await c.responses.with_raw_response.create(model=model, input=with_file(part))
    resp = raw.parse()
    assert resp.status == "completed" and "You said: Summarize this" in resp.output_text
    assert raw.headers["X-Faregate-Model"] == RESPONSES_MODEL
    [sent] = upstream_bodies(responses_demo)
    assert sent["input"][0]["content"][1] == part


async def test_a_file_by_id_or_url_without_a_responses_channel_is_a_400_naming_it(demo: Demo) -> None:
    async with client(demo) as c:
        for part, field in ((BY_ID, "file_id"), (BY_URL, "file_url"), (IMAGE_BY_ID, "file_id")):
            with pytest.raises(openai.BadRequestError) as caught:
                await c.responses.create(model="auto", input=with_file(part))
            err = caught.value
            assert err.status_code == 400 and err.param == f"input[0].content[1].{field}"
            assert "api: openai-responses" in err.message and "never fetches" in err.message
            noun = "image" if part is IMAGE_BY_ID else "file"
            assert f"an input {noun} given by {field} cannot" in err.message
    assert not providers_called(demo)


@pytest.mark.parametrize(
    ("model", "block"),
    [
        (ANTHROPIC, {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}, "title": "report.pdf"}),
        (GEMINI, {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}}),
    ],
    ids=["anthropic", "gemini"],
)  # fmt: skip
async def test_an_inline_pdf_reaches_the_formats_that_read_pdfs(demo: Demo, model: str, block: Any) -> None:
    async with client(demo) as c:
        resp = await c.responses.create(model=model, input=with_file(PDF))
    assert resp.status == "completed"
    [sent] = upstream_bodies(demo)
    parts = sent["messages"][0]["content"] if "messages" in sent else sent["contents"][0]["parts"]
    assert block in parts


async def test_an_inline_pdf_pinned_to_a_chat_completions_channel_is_a_400(demo: Demo) -> None:
    async with client(demo) as c:
        with pytest.raises(openai.BadRequestError) as caught:
            await c.responses.create(model="openai/gpt-4o-mini", input=with_file(PDF))
    assert caught.value.param == "input[0].content[1].file_data"
    assert "application/pdf" in caught.value.message
    assert not providers_called(demo)
