"""`python -m rlrun ...` is the `rlrun` command, for when the script is not on PATH (or to pick the interpreter)."""

from rlrun.cli import main

if __name__ == "__main__":
    main()
