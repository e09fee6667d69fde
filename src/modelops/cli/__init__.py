"""The ``modelops`` command line (Typer + Rich), a thin layer over the typed client."""
