"""What a running killer says, rendered from its per-tick snapshot: lines,
STATUS=, metrics, journal entries, the state file."""
