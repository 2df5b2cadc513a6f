"""The Qt-free runtime layer: the sessions every door (window, CLI, HTTP server, workers) calls."""
from .quantize import (GGUF, HF_FOLDER, OUTPUT_TYPES, CalibrateRequest, CalibrationResult,
                       QuantizeRequest, SourcePlan, SourceSummary, TypeRow, analyse_source,
                       base_name, calibrate_job, default_output, free_path, imatrix_path,
                       plan_source, quantize_job, source_profile)

__all__ = ["GGUF", "HF_FOLDER", "OUTPUT_TYPES", "CalibrateRequest", "CalibrationResult",
           "QuantizeRequest", "SourcePlan", "SourceSummary", "TypeRow", "analyse_source",
           "base_name", "calibrate_job", "default_output", "free_path", "imatrix_path",
           "plan_source", "quantize_job", "source_profile"]
