"""REST API (FastAPI): routes parse, call one service, and map the result."""
