"""Learning: options and shared types, the stages, the sequence (`learn`), repeated evaluation,
tuning, tracking in MLflow and the report."""
