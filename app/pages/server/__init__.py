"""The Server page: the local API server started from the window, over the window's models."""
from .server_page import ServerPage  # noqa: F401
