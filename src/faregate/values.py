"""`@frozen`: the dataclass of faregate's values, frozen to the type checker, cheap to make at run time.

A frozen dataclass sets each field in `__init__` through `object.__setattr__`: a 17-field request costs
about seven times a plain slotted dataclass to build, and a request builds a few dozen such values on its
way through the pipeline. So every value is declared `@frozen` (frozen, slotted, hashable when compared by
its fields): mypy (strict, in `make check`) refuses any assignment to a field as it would for
`frozen=True`, and at run time the class is a slotted dataclass whose `__init__` stores the fields
directly. `FAREGATE_STRICT_VALUES=1` (the test suite sets it) makes them truly frozen at run time too,
so a mutation the type checker missed (`setattr`, a `type: ignore`) fails a test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")
STRICT = os.environ.get("FAREGATE_STRICT_VALUES", "") not in ("", "0")


@overload
def frozen(cls: type[T], /) -> type[T]: ...


@overload
def frozen(*, eq: bool = True, order: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, eq_default=True, field_specifiers=(field,))
def frozen(cls: type[T] | None = None, /, *, eq: bool = True, order: bool = False) -> Any:
    def make(c: type[T]) -> type[T]:
        if STRICT:
            return dataclass(frozen=True, slots=True, eq=eq, order=order)(c)
        return dataclass(slots=True, eq=eq, order=order, unsafe_hash=eq)(c)

    return make if cls is None else make(cls)
