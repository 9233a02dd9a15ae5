import sys

from gos3matic.cli import main

sys.exit(main())
