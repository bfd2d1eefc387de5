"""Executors: where worker loops run (local processes, Ray actors)."""
