"""tunesmith: a hyperparameter tuning service (server, optimizer, store, workers, client)."""

__version__ = "0.1.0"
