"""The quality report page renders reports: table rows, Pareto marks, chart exported as PNG."""
from __future__ import annotations

import numpy as np
import pytest

from quantdesk.core.evaluate import QualityReport


def _r(ft: str, size: int, kld: float) -> QualityReport:
    return QualityReport(model=f"/m/x-{ft}.gguf", reference="/m/x-F32.gguf", file_type=ft,
                         size_bytes=size, bits_per_weight=size * 8 / 1.3e8, ppl=24.0,
                         ref_ppl=23.5, kld_mean=kld, kld_median=kld, kld_p99=kld * 4,
                         kld_max=kld * 8, top1_agreement=0.9, tokens=252, chunks=4, n_ctx=128,
                         seconds=1.0)


@pytest.mark.gui
def test_page_shows_reports_and_exports_png(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from quantdesk.app.pages.quality_report import QualityReportPage
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.resize(900, 700)
    page.show()
    page.set_reports([_r("Q8_0", 145_000_000, 0.001), _r("Q4_0", 110_000_000, 0.05),
                      _r("Q4_K_M", 105_000_000, 0.02)])
    assert page.table.rowCount() == 3
    types = [page.table.item(i, 0).text() for i in range(3)]
    assert types == ["Q8_0 ★", "Q4_0", "Q4_K_M ★"]          # Q4_0 is dominated by Q4_K_M
    assert page.csv_button.isEnabled() and page.png_button.isEnabled()
    out = tmp_path / "chart.png"
    assert page.export_png(str(out))
    img = QImage(str(out))
    assert not img.isNull() and img.width() > 300
    img = img.convertToFormat(QImage.Format_RGB888)
    pixels = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    rows = pixels.reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    rgb = rows.reshape(img.height(), img.width(), 3)
    accent = np.all(rgb == (0xD9, 0x82, 0x2B), axis=2)
    assert accent.sum() > 50                                 # the Pareto front was drawn


@pytest.mark.gui
def test_start_without_models_says_what_is_missing(qtbot):
    from quantdesk.app.pages.quality_report import QualityReportPage
    page = QualityReportPage()
    qtbot.addWidget(page)
    page.start()
    assert "reference" in page.status.text() and page.run_button.isEnabled()
