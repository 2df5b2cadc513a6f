"""Light, dark or the system's scheme, applied to the running app at once.

Three layers agree: Qt's own colour scheme hint (QStyleHints.setColorScheme, Qt 6.8+: native
dialogs and the platform follow it), the Fusion palette (what every plain widget paints with; set
explicitly because not every platform theme switches it) and our stylesheet variant
(resources/style.qss or style-dark.qss). "system" reads QStyleHints.colorScheme() and follows it
when the desktop changes its mind.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from .resources import stylesheet

THEMES = ("system", "light", "dark")


def system_is_dark(app=None) -> bool:
    app = app or QGuiApplication.instance()
    hints = app.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else None
    # Unknown (no platform theme says, or Qt < 6.5): light, the stylesheet's base look.
    return scheme == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    p = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1f2430", QPalette.ColorRole.WindowText: "#e3e7ef",
        QPalette.ColorRole.Base: "#171b24", QPalette.ColorRole.AlternateBase: "#232938",
        QPalette.ColorRole.ToolTipBase: "#2b3242", QPalette.ColorRole.ToolTipText: "#e3e7ef",
        QPalette.ColorRole.Text: "#e3e7ef", QPalette.ColorRole.Button: "#2a3040",
        QPalette.ColorRole.ButtonText: "#e3e7ef", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Link: "#7aa7ff", QPalette.ColorRole.Highlight: "#3b6fd8",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.PlaceholderText: "#8a93a6",
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c7486"))
    return p


class ThemeController:
    """Owns the app's look: `apply(theme)` now, and in "system" mode again whenever the desktop's
    scheme changes. `dark` says what is showing."""

    def __init__(self, app=None):
        self.app = app or QGuiApplication.instance()
        self.theme = "system"
        self.dark = False
        hints = self.app.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._system_changed)
        self._light_palette = self.app.style().standardPalette() if hasattr(self.app, "style") \
            else QPalette()

    def apply(self, theme: str) -> bool:
        """Show `theme` ("system", "light", "dark"); returns whether the result is dark."""
        self.theme = theme if theme in THEMES else "system"
        hints = self.app.styleHints()
        if hasattr(hints, "setColorScheme"):
            # Tell the platform too (title bars, native dialogs); "system" hands it back.
            if self.theme == "system":
                hints.unsetColorScheme()
            else:
                hints.setColorScheme(Qt.ColorScheme.Dark if self.theme == "dark"
                                     else Qt.ColorScheme.Light)
        dark = system_is_dark(self.app) if self.theme == "system" else self.theme == "dark"
        self._paint(dark)
        return dark

    def _paint(self, dark: bool) -> None:
        self.dark = dark
        self.app.setPalette(dark_palette() if dark else self._light_palette)
        if hasattr(self.app, "setStyleSheet"):
            self.app.setStyleSheet(stylesheet(dark))

    def _system_changed(self, _scheme) -> None:
        if self.theme == "system":
            self._paint(system_is_dark(self.app))


_controller: ThemeController | None = None


def apply_theme(theme: str) -> bool:
    """Apply `theme` to the running application (one controller per process); True when dark."""
    global _controller
    app = QGuiApplication.instance()
    if _controller is None or _controller.app is not app:
        _controller = ThemeController(app)
    return _controller.apply(theme)


def current() -> ThemeController | None:
    return _controller
