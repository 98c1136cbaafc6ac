"""The command line, ``loanrisk``. :mod:`~loanrisk.cli.main` holds the app and the learning
commands; each other module adds one group of commands beside its pipeline stage (``register``),
all of them sharing :mod:`~loanrisk.cli.common`."""

from loanrisk.cli import audit, doctor, keys, outcomes, quality, service, ui, watch
from loanrisk.cli.main import app, main

# the order the commands are listed in `loanrisk --help`
for _group in (service, keys, audit, outcomes, doctor, watch, quality, ui):
    _group.register(app)

__all__ = ["app", "main"]
