"""loanrisk: learn loan grades and risk tiers from your own data, and serve them safely."""

__version__ = "0.1.0"
