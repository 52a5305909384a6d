"""Wiring one run of the target, below the Singer SDK.

`singer/target.py` is the SDK's face: its hooks and the private SDK methods it overrides.
What a run does around them lives here, as plain Python the SDK never reaches: starting the
writer (AWS clients, dead letters, the preflight checks, producers), the mapping processes,
the routing tallies and the "nothing routed" check, counting non-finite numbers, checkpoints
before STATE, and signals and stopping. This package imports no Singer SDK (an import-linter
contract), so a run can be read, and changed, without the SDK's hooks in the way.
"""
