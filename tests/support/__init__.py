"""Helpers shared by the foundation tests: archive builders, server and data-directory probes."""
