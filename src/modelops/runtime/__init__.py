"""What runs inside a job's own process (never in the server): stdlib-only launch helpers,
and the runners that load a user's package by its contract."""
