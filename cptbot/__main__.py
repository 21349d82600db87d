"""`python -m cptbot`: the same command line as the `cptbot` script."""

from .cli import main

raise SystemExit(main())
