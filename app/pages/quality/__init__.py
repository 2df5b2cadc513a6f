"""The Quality page: quants of one model against their reference (table, chart, exports)."""
from .quality_page import QualityReportPage  # noqa: F401
