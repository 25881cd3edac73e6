"""The command line and its commands: the daemon's main, status, check, selftest."""
