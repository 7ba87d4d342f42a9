"""Energy accounting: live energy, exact hours, statistics and the capacity charge.

The modules here except the Home Assistant glue are pure (no Home Assistant import) and
deterministic: time always comes in as an argument.
"""
