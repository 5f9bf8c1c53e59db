"""``python -m agentsms``: the same as the ``agentsms`` command."""

from agentsms.cli import main

if __name__ == "__main__":
    main()
