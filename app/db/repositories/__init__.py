"""Repositories: all SQL lives here, one class per aggregate of tables."""
