"""Quality reports: perplexity, KL-divergence and top-1 agreement of quants against a reference.

    from quantdesk.core.evaluate import compare, evaluate, CancelToken
    report = evaluate("m-Q4_K_M.gguf", "m-F16.gguf", text, n_ctx=512)
    report.kld_mean, report.kld_p99, report.top1_agreement, report.ppl, report.ref_ppl

Cheap to import: numpy only; llama_cpp is loaded in the child process that does the work.
"""
from .child import Cancelled, EvaluationError
from .progress import CancelToken, EvalProgress
from .report import (QualityReport, chart_points, compare, evaluate, pareto_front, read_text,
                     sample_text_path, write_csv)

__all__ = ["QualityReport", "compare", "evaluate", "pareto_front", "chart_points", "write_csv",
           "read_text", "sample_text_path", "EvaluationError", "Cancelled", "CancelToken",
           "EvalProgress"]
