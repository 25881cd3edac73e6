"""`python3 -m oomkiller` runs the CLI, as the zipapp does."""

from oomkiller.commands.cli import main

if __name__ == "__main__":
    main()
