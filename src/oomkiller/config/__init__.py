"""What the user asks for: the rules table, options, the config file, policies."""
