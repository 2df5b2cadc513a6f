"""Chat transcript rendering: Markdown with Pygments-highlighted code blocks in a read-only browser.

markdown and Pygments are imported on first render, not at startup. Raw HTML in model output is
shown as text (the HTML pre-processors are removed) and the view never fetches anything: every
resource request is refused, links open in the system browser only when the user clicks them.
Colours come in a light and a dark set: the text is the view's palette colour, so the bubbles,
code boxes and Pygments style must follow the theme too (light bubbles behind the dark theme's
light text were unreadable). `is_dark(widget)` tells which set a view needs.
"""
from __future__ import annotations

import html
from functools import lru_cache

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QPalette
from PySide6.QtWidgets import QTextBrowser

ROLE_LABEL = {"user": "You", "assistant": "Assistant", "system": "System"}
# Bubble backgrounds per role, muted text, table borders, code boxes, errors, Pygments style.
COLOURS = {
    False: {"user": "#eef3fc", "assistant": "#ffffff", "system": "#f6f6f6", "muted": "#7a8494",
            "border": "#cfd6e0", "code": "#f3f5f8", "error_bg": "#fdecea", "error": "#8a1c12",
            "pygments": "friendly"},
    True: {"user": "#25314a", "assistant": "#1f2430", "system": "#262b36", "muted": "#8a93a6",
           "border": "#3a4356", "code": "#12161e", "error_bg": "#3a1f1f", "error": "#ffb4aa",
           "pygments": "github-dark"},
}


def is_dark(widget) -> bool:
    """Whether `widget` paints on a dark base (the dark theme's palette)."""
    return widget.palette().color(QPalette.ColorRole.Base).lightness() < 128


def _converter(pygments_style: str):
    import markdown  # lazy: not needed until the first message is shown
    md = markdown.Markdown(
        extensions=["fenced_code", "codehilite", "tables", "sane_lists"],
        extension_configs={"codehilite": {"noclasses": True, "guess_lang": False,
                                          "pygments_style": pygments_style}},
    )
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


_MD: dict[bool, object] = {}   # one converter per colour set


def markdown_to_html(text: str, dark: bool = False) -> str:
    colours = COLOURS[dark]
    if dark not in _MD:
        _MD[dark] = _converter(colours["pygments"])
    md = _MD[dark]
    md.reset()
    body = md.convert(text)
    border, code = colours["border"], colours["code"]
    # Markdown tables get visible cell borders; code blocks lose the blank line Pygments leaves.
    body = body.replace("<table>", '<table border="1" cellspacing="0" cellpadding="4" '
                        f'style="border-color:{border}; border-style:solid">')
    body = body.replace("\n</code></pre>", "</code></pre>")
    # QTextDocument ignores a <div>'s background; a one-cell table gives code blocks a visible box.
    body = body.replace('<div class="codehilite"', '<table width="100%" cellpadding="6" '
                        f'bgcolor="{code}"><tr><td><div class="codehilite"')
    return body.replace("</pre></div>", "</pre></div></td></tr></table>")


@lru_cache(maxsize=512)
def message_html(role: str, content: str, note: str = "", dark: bool = False,
                 thinking: str = "") -> str:
    """One message as a table 'bubble'; cached because finished messages never change.
    `thinking`: a reasoning model's thoughts, shown muted above the answer."""
    colours = COLOURS[dark]
    label, bg = ROLE_LABEL.get(role, role.title()), colours.get(role, colours["assistant"])
    muted = colours["muted"]
    body = markdown_to_html(content, dark) if content else f'<p style="color:{muted}">…</p>'
    if thinking:
        thought = html.escape(thinking).replace("\n", "<br>")
        body = (f'<p style="color:{muted}; margin:4px 0"><i>Thinking:</i> {thought}</p>'
                + (body if content else ""))
    tag = (f' <span style="color:{muted}; font-weight:normal">{html.escape(note)}</span>'
           if note else "")
    return (f'<table width="100%" cellpadding="8" cellspacing="0" bgcolor="{bg}" '
            f'style="margin-bottom:6px"><tr><td><p style="margin:0"><b>{label}</b>{tag}</p>'
            f'{body}</td></tr></table>')


def error_html(message: str, dark: bool = False) -> str:
    bg, fg = COLOURS[dark]["error_bg"], COLOURS[dark]["error"]
    return (f'<table width="100%" cellpadding="8" bgcolor="{bg}"><tr><td>'
            f'<span style="color:{fg}"><b>Error:</b> {html.escape(message)}</span>'
            f'</td></tr></table>')


class MessageView(QTextBrowser):
    """Read-only transcript. Keeps the reader's scroll position unless they were at the bottom."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("messageView")
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._open_link)

    def loadResource(self, kind, url):  # noqa: N802 - Qt override
        return None  # no remote (or local) content: images and stylesheets are never fetched

    def _open_link(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)

    def set_transcript(self, html_text: str) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        old = bar.value()
        self.setHtml(html_text)
        bar.setValue(bar.maximum() if at_bottom else old)
