"""Watching what is served: drift, live performance, decision replay and retraining from the
store."""
