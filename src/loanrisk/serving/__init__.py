"""Serving: the model holder (verified loads, atomic swaps, polling), shadow and canary
challengers, and batch scoring."""

from loanrisk.serving.holder import ModelHolder, Served, TrustedRecords, public_text

__all__ = ["ModelHolder", "Served", "TrustedRecords", "public_text"]
