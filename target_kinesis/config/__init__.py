"""What the user configured: the settings contract (schema), its checked form, the config file."""
