"""The Quality page's chart: file size against mean KL-divergence, the Pareto front joined."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget


def size_tick(mb: float, span: float) -> str:
    """A file-size tick label with the decimals its axis needs (in whole numbers, a 104.45 to
    106.45 MB axis read "104, 105, 106" next to a table saying 105.5 MB)."""
    decimals = 0 if span >= 20 else 1 if span >= 2 else 2
    return f"{mb:.{decimals}f}"


class KldChart(QWidget):
    """File size (x) against mean KLD (y, log scale); the Pareto front is joined and highlighted."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.points: list[dict] = []
        self.setMinimumSize(360, 240)

    def set_points(self, points: list[dict]) -> None:
        self.points = points
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        area = QRectF(self.rect()).adjusted(64, 16, -24, -40)
        p.setPen(QPen(self.palette().text().color(), 1))
        p.drawLine(area.bottomLeft(), area.bottomRight())
        p.drawLine(area.bottomLeft(), area.topLeft())
        p.drawText(QRectF(area.left(), area.bottom() + 18, area.width(), 20), Qt.AlignCenter,
                   "file size (MB)")
        p.save()
        p.translate(14, area.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-80, -10, 160, 20), Qt.AlignCenter, "mean KL-divergence")
        p.restore()
        pts = [q for q in self.points if q["y"] > 0]
        if not pts:
            p.drawText(area, Qt.AlignCenter, "Run a comparison to see the chart")
            return
        xs = [q["x"] / 1e6 for q in pts]
        ys = [math.log10(q["y"]) for q in pts]
        x0, x1 = min(xs), max(xs)
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
        x0, x1 = (x0 - 1, x1 + 1) if x1 == x0 else (x0 - 0.05 * (x1 - x0), x1 + 0.05 * (x1 - x0))
        y1 = y1 if y1 > y0 else y0 + 1

        def at(x: float, y: float) -> QPointF:
            return QPointF(area.left() + (x - x0) / (x1 - x0) * area.width(),
                           area.bottom() - (y - y0) / (y1 - y0) * area.height())

        for decade in range(y0, y1 + 1):
            pos = at(x0, decade)
            p.drawText(QRectF(0, pos.y() - 8, area.left() - 6, 16), Qt.AlignRight | Qt.AlignVCenter,
                       f"1e{decade}")
        for x in (x0, (x0 + x1) / 2, x1):
            pos = at(x, y0)
            p.drawText(QRectF(pos.x() - 40, area.bottom() + 2, 80, 16), Qt.AlignCenter,
                       size_tick(x, x1 - x0))
        accent = QColor("#d9822b")
        front = sorted((x, y) for x, y, q in zip(xs, ys, pts) if q["pareto"])
        p.setPen(QPen(accent, 2))
        for a, b in zip(front, front[1:]):
            p.drawLine(at(*a), at(*b))
        for x, y, q in zip(xs, ys, pts):
            c = at(x, y)
            p.setPen(QPen(accent if q["pareto"] else self.palette().text().color(), 1.5))
            p.setBrush(accent if q["pareto"] else Qt.NoBrush)
            p.drawEllipse(c, 4.5, 4.5)
            p.setPen(self.palette().text().color())
            p.drawText(c + QPointF(7, -6), q["label"])
        p.end()
