"""Run the docproc command line: `python -m docproc`."""

from docproc.cli import main

raise SystemExit(main())
