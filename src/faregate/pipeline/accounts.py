"""Keys, limits and the usage log of a running gateway, over the one SQLite store."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from faregate.accounting.budget import AnswerBound
from faregate.accounting.keys import ApiKey, KeyStore, hash_key
from faregate.accounting.limits import Limits, Ticket
from faregate.accounting.response_store import ResponseStore
from faregate.accounting.usage_log import UsageLog
from faregate.db import is_postgres, open_db
from faregate.routing.plan import Plan
from faregate.state.base import LimitState, LocalState

PROMPT_MARGIN = 5  # reserve prompt tokens + 1/5: providers' tokenizers count differently from tiktoken
KEY_CACHE_S = 2.0  # a revoked key stops working within this long (keys are looked up by hash, then cached)
DEFAULT_MAX_OUTPUT = 4096  # worst-case completion when neither the request nor the offering gives a limit


def journal_dir(store: Path | str) -> Path | None:
    """Where the usage journal of a store lives: beside a store file (`faregate.db.journal/`); for a
    PostgreSQL store, on this machine under `./.faregate-journal/`, in a folder named by a digest of the URL
    (never the URL itself: it may hold a password)."""
    if str(store) == ":memory:":
        return None
    if is_postgres(store):
        return Path(".faregate-journal") / hashlib.sha256(str(store).encode()).hexdigest()[:16]
    return Path(f"{store}.journal")


@contextlib.contextmanager
def replay_turn(journal: Path | None) -> Iterator[None]:
    """Held while a starting process replays the usage journal that dead processes left (a flock beside
    it): workers starting together on one store take turns, so none reads a segment that another is
    replaying and deleting. Tables need no such turn: each concern makes its own in `db.write_transaction`."""
    if journal is None:
        yield
        return
    journal.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{journal}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Accounts:
    def __init__(self, path: Path | str) -> None:
        self.db = open_db(path)
        self.keys = KeyStore(self.db)
        journal = journal_dir(path)
        with replay_turn(journal):
            # The usage log gets its own connection: its writer thread never holds up key lookups.
            self.usage = UsageLog(open_db(path), journal_dir=journal)
        self.responses = ResponseStore(open_db(path))  # stored Responses API responses, own connection
        self.limits = Limits(spent_usd=self.usage.spend_by_key())
        self.state: LimitState = LocalState(self.limits)  # or shared (server/shared_state.py)
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}

    def authenticate(self, secret: str, now: float | None = None) -> ApiKey | None:
        """The active key with this secret, or None. Cached briefly by hash (never by the secret)."""
        now = time.monotonic() if now is None else now
        digest = hash_key(secret)
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        key = self.keys.authenticate(secret)
        if key is not None and not key.active:
            key = None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (key, now + KEY_CACHE_S)
        return key

    def forget_keys(self) -> None:
        """Drop every cached key lookup: a key revoked or changed here takes effect on the next request."""
        self._cache.clear()

    async def admit(self, key: ApiKey, plan: Plan, prompt_tokens: int, max_tokens: int | None) -> Ticket:
        """Check rpm/tpm and reserve the plan's worst-case cost against the budget: the dearest channel at
        the prompt (with a margin for other tokenizers) and the largest answer the request allows. A chat
        request with no `max_tokens` (`max_tokens` None) is bounded at `DEFAULT_MAX_OUTPUT`, lowered to what
        the budget affords: the ticket's `max_tokens` says so."""
        bound = AnswerBound(
            prompt_tokens=prompt_tokens + prompt_tokens // PROMPT_MARGIN,
            prices=tuple(e.channel.price for e in plan.entries),
            max_tokens=DEFAULT_MAX_OUTPUT if max_tokens is None else max_tokens,
            adjustable=max_tokens is None,
        )
        return await self.state.admit(key, time.monotonic(), prompt_tokens=prompt_tokens, bound=bound)

    def settle(self, ticket: Ticket, cost_usd: Decimal, completion_tokens: int) -> None:
        self.state.settle(ticket, time.monotonic(), cost_usd=cost_usd, completion_tokens=completion_tokens)
