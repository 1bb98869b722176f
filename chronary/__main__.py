"""`python -m chronary` runs the CLI, so the frozen binary and a checkout behave the same."""

from chronary.cli import main

if __name__ == "__main__":
    main()
