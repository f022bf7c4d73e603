"""An async, wire-compatible implementation of the OpenStack Placement API."""
