"""Scoring one version: the ONNX scorer (decisions, tiers, reasons), request validation,
decision thresholds and serving-cost timing. Never imports training libraries."""
