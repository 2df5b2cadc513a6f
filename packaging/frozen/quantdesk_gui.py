"""Frozen entry of the desktop app (`quantdesk-gui`); see packaging/quantdesk.spec."""
import multiprocessing
import sys

if __name__ == "__main__":
    # First thing: a spawned engine host / evaluation child re-runs this program with
    # --multiprocessing-fork; freeze_support runs the child's job and exits there.
    multiprocessing.freeze_support()
    from quantdesk.app.main import main
    sys.exit(main())
