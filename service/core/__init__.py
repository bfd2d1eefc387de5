"""The service's core: the state machine and what drives it.

- `machine`: every trial and study transition (the only module that assigns a state).
- `scheduling`: who gets which trial (leases, asks, prefetching) and the strategy's input.
- `lifecycle`: what a leased trial's report, heartbeat, complete, fail and release do.
- `study_end`: when a study is over (its budget, its stopping rules).
- `studies`: a specification becomes a stored study; budget changes; study actions.
"""
