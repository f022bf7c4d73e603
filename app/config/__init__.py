"""The operator's configuration: ``placement.conf`` and what the service makes of it."""
