#!/usr/bin/env python3
"""The documented entry point from a checkout: `python annotate_s3.py annotate BUCKET PATH ...`."""

import sys

from gos3matic.cli import main

if __name__ == "__main__":
    sys.exit(main())
