"""The running killer: its loop and tick, its one instance, its events."""
