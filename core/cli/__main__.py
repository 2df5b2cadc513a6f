import sys

from quantdesk.core.cli import main

sys.exit(main())
