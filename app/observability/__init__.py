"""Metrics, the access log and the middleware that records both."""
