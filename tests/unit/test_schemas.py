"""Every shipped JSON Schema is a valid 2020-12 schema (faregate compiles them without checking, at start-up)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from faregate.config.validate import validator
from faregate.paths import schema_path

SCHEMAS = ("routes", "catalog", "audit")


@pytest.mark.parametrize("name", SCHEMAS)
def test_each_shipped_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert validator(name).schema == schema


def test_the_check_would_catch_a_broken_schema() -> None:
    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema({"type": "no-such-type"})
