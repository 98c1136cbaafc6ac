"""`python -m loanrisk ...`: the `loanrisk` command, where console scripts are not on PATH."""

from loanrisk.cli import main

if __name__ == "__main__":
    main()
