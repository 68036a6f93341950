"""`python -m rex_search ...`: the same command line as `rex-search ...`."""

from rex_search.cli import main

if __name__ == "__main__":
    main()
