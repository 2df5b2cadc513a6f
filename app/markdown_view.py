"""Chat transcript rendering: Markdown with Pygments-highlighted code blocks in a read-only browser.

markdown and Pygments are imported on first render, not at startup. Raw HTML in model output is
shown as text (the HTML pre-processors are removed) and the view never fetches anything: every
resource request is refused, links open in the system browser only when the user clicks them.
"""
from __future__ import annotations

import html
from functools import lru_cache

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QTextBrowser

ROLE_STYLE = {
    "user": ("You", "#eef3fc"),
    "assistant": ("Assistant", "#ffffff"),
    "system": ("System", "#f6f6f6"),
}


def _converter():
    import markdown  # lazy: not needed until the first message is shown
    md = markdown.Markdown(
        extensions=["fenced_code", "codehilite", "tables", "sane_lists"],
        extension_configs={"codehilite": {"noclasses": True, "guess_lang": False,
                                          "pygments_style": "friendly"}},
    )
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


_MD = None


def markdown_to_html(text: str) -> str:
    global _MD
    if _MD is None:
        _MD = _converter()
    _MD.reset()
    body = _MD.convert(text)
    # Markdown tables get visible cell borders; code blocks lose the blank line Pygments leaves.
    body = body.replace("<table>", '<table border="1" cellspacing="0" cellpadding="4" '
                        'style="border-color:#cfd6e0; border-style:solid">')
    body = body.replace("\n</code></pre>", "</code></pre>")
    # QTextDocument ignores a <div>'s background; a one-cell table gives code blocks a visible box.
    body = body.replace('<div class="codehilite"', '<table width="100%" cellpadding="6" '
                        'bgcolor="#f3f5f8"><tr><td><div class="codehilite"')
    return body.replace("</pre></div>", "</pre></div></td></tr></table>")


@lru_cache(maxsize=512)
def message_html(role: str, content: str, note: str = "") -> str:
    """One message as a table 'bubble'; cached because finished messages never change."""
    label, bg = ROLE_STYLE.get(role, (role.title(), "#ffffff"))
    body = markdown_to_html(content) if content else '<p style="color:#7a8494">…</p>'
    tag = f' <span style="color:#7a8494; font-weight:normal">{html.escape(note)}</span>' if note else ""
    return (f'<table width="100%" cellpadding="8" cellspacing="0" bgcolor="{bg}" '
            f'style="margin-bottom:6px"><tr><td><p style="margin:0"><b>{label}</b>{tag}</p>'
            f'{body}</td></tr></table>')


def error_html(message: str) -> str:
    return (f'<table width="100%" cellpadding="8" bgcolor="#fdecea"><tr><td>'
            f'<span style="color:#8a1c12"><b>Error:</b> {html.escape(message)}</span>'
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
