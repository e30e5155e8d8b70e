"""Fixtures for the integration tests live in harness.py, shared with other suites."""

from harness import emulator, postgres_server, project, warehouse  # noqa: F401
