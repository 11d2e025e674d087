"""``python -m covtool`` runs the command line."""

from covtool.cli.app import main

if __name__ == "__main__":
    main()
