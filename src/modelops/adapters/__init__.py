"""Adapters implementing the ports: SQL stores, artifact stores, executors, archives."""
