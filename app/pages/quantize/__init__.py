"""The Quantize page: a source, a table of output types (size, quality, fit), a run, a chat.

page.py lays out and drives the page; options.py holds the run options and calibration;
types_model.py is the type table's item model. The decisions (source analysis, names, the jobs)
are core/runtime/quantize.py's; app/bridge.py runs the jobs off the GUI thread.
"""
from .page import QuantizePage

__all__ = ["QuantizePage"]
