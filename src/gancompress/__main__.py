"""`python -m gancompress` == the `gancompress` console script."""
from gancompress.cli import main

raise SystemExit(main())
