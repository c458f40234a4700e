"""`python -m tailrabbit` is the same as the `tailrabbit` console script."""

from tailrabbit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
