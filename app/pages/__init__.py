"""Self-contained pages mounted by the main window (see discover.py for the Discover page)."""
