"""Pareto front and chart data of a comparison (fast, synthetic reports)."""
from __future__ import annotations

from quantdesk.core.evaluate import QualityReport, chart_points, pareto_front


def _r(ft: str, size: int, kld: float) -> QualityReport:
    return QualityReport(model=f"m-{ft}.gguf", reference="ref.gguf", file_type=ft,
                         size_bytes=size, bits_per_weight=0.0, ppl=10.0, ref_ppl=9.0,
                         kld_mean=kld, kld_median=kld, kld_p99=kld, kld_max=kld,
                         top1_agreement=0.9, tokens=100, chunks=1, n_ctx=128, seconds=1.0)


def test_dominated_points_are_off_the_front():
    reports = [_r("Q8_0", 800, 0.001), _r("Q6_K", 600, 0.004), _r("Q5_0", 650, 0.01),
               _r("Q4_K_M", 450, 0.02), _r("Q4_0", 450, 0.05), _r("Q2_K", 300, 0.3)]
    assert pareto_front(reports) == [True, True, False, True, False, True]


def test_chart_points_sorted_by_size_with_labels():
    reports = [_r("Q8_0", 800, 0.001), _r("Q2_K", 300, 0.3), _r("Q4_0", 450, 0.05)]
    points = chart_points(reports)
    assert [p["label"] for p in points] == ["Q2_K", "Q4_0", "Q8_0"]
    assert [p["x"] for p in points] == [300, 450, 800]
    assert all(p["pareto"] for p in points)
    assert reports[0].to_json()["ppl_ratio"] == 10.0 / 9.0


def test_bundled_sample_text_is_found_and_long_enough():
    from quantdesk.core.evaluate import read_text, sample_text_path
    text = read_text(sample_text_path())
    assert len(text.split()) > 800          # enough for several 512-token windows' worth of words
