"""Frozen entry of the command line (`quantdesk`); see packaging/quantdesk.spec."""
import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the engine host is a spawned child of this program
    from quantdesk.core.cli import main
    sys.exit(main())
