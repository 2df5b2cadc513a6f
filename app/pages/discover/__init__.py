"""The Discover page: search the hub, a model's page with fit verdicts, downloads."""
from .discover_page import DiscoverPage  # noqa: F401
