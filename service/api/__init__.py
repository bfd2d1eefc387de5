"""The REST API (FastAPI): routers, dependencies, error mapping."""
