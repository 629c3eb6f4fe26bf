"""State that every worker and instance of a fleet must share: rpm/tpm windows, budget reservations and
their settlement, channel cooldowns and the latency averages `fastest` ranks by.

`base.LimitState` is the interface; `base.LocalState` is the embedded default (this process's memory, the
`Limits` of accounting/limits.py); `redis_limits.RedisLimits` and `redis_health.RedisHealthSync` share it
through Redis, every check-and-reserve one atomic Lua script. `open.open_state` picks one from the URL in
routes.yaml's `state:` (env `FAREGATE_STATE`).
"""
