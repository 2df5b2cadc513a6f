"""The Library page: the local models (table model, page) over the library session's adapter."""
from .library_page import LibraryPage  # noqa: F401
from .library_service import LibraryService  # noqa: F401
