#!/usr/bin/env python3
"""The documented entry point from a checkout: `python annotate_s3.py annotate BUCKET PATH ...`.

A system `python` may lack the dependencies; then the checkout's own .venv (made by `make install`)
runs the command instead, so the documented line works as written.
"""

import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent
VENV_PYTHON = CHECKOUT / ".venv" / "bin" / "python"
EXIT_ENVIRONMENT = 3

if __name__ == "__main__":
    sys.path.insert(0, str(CHECKOUT))
    try:
        from gos3matic.cli import main
    except ModuleNotFoundError as missing:
        running_venv = Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve()
        if VENV_PYTHON.exists() and not running_venv:
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
        print(
            f"gos3matic: error: missing dependency {missing.name!r}: "
            f"run 'make install' in {CHECKOUT} (or 'pip install {CHECKOUT}')",
            file=sys.stderr,
        )
        sys.exit(EXIT_ENVIRONMENT)
    sys.exit(main())
