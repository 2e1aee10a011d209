import sys

from lrtheory.cli import main

sys.exit(main())
