"""The Qt-free runtime layer: session objects that every door (the window, the CLI, the coming
HTTP server and remote workers) calls, so that a rule about models lives in one place."""
from quantdesk.core.runtime.library import LibrarySession, Listing, Opened  # noqa: F401
