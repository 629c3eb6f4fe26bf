"""The collector and start-up's objects: what `serve` does once its first table is in.

The catalog, the decision table and every imported module live as long as the process. Left in the
collector's generations, they are traversed again and again by the collections that a request's
allocations trigger. `freeze_startup` collects once and moves what survives into the permanent
generation (`gc.freeze`), where no collection looks; a reload's new table is young again and ages out
as usual. Nothing is kept alive that would not be: frozen objects are still freed by reference counting.
"""

from __future__ import annotations

import gc


def freeze_startup() -> int:
    """Collect start-up's garbage, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
