"""The Discover page's model page: a repo's card, licence and parameter count, its GGUF variants
with fit badges (each read from the variant's remote header), and for a safetensors repo the
conversion outlook and "Quantize locally…" (checkpoint_fetch.py).

A mixin of discover_page.DiscoverPage, which builds the widgets used here (repo_title, card,
variants, variants_view, download_button, quantize_button, recommendation, fetch, message) and
runs every network call off the GUI thread (self.pool, call_later).
"""
from __future__ import annotations

import html

from quantdesk.app import formatting
from quantdesk.app.bridge import call_later


class RepoView:
    """Opening a search result: what DiscoverPage shows on the right."""

    def open_repo(self, row: int) -> None:
        result = self.results.item(row)
        if result is None:
            return
        from quantdesk.core.hub import repo_details
        from quantdesk.core.hub.card import read_card
        self._generation += 1
        gen = self._generation
        self._card_license = None
        self._show_repo(None, f"<b>{html.escape(result.repo_id)}</b> — loading…")
        call_later(self.pool, self, lambda: repo_details(result.repo_id),
                   lambda d: gen == self._generation and self._show_repo(d), self._error)
        call_later(self.pool, self, lambda: read_card(result.repo_id),
                   lambda card: gen == self._generation and self._show_card(*card), self._error)

    def _show_card(self, text: str, license: str | None) -> None:
        self.card.show_markdown(text)
        self._card_license = license
        if self.details is not None:
            self._show_title()

    def _show_repo(self, details, title: str | None = None) -> None:
        self.details = details
        self.variants.set_rows(details.variants if details else [])
        self.download_button.setEnabled(bool(details and details.variants))
        self.quantize_button.setVisible(bool(details and details.kind == "safetensors"))
        self.recommendation.setText("")
        self.recommended_type = None
        self.convert_refusal = None   # until config.json is judged
        if details is None:
            self.repo_title.setText(title or "Select a model to see its page.")
            self.card.clear()
            return
        self._show_title()
        if details.variants:
            self.variants_view.selectRow(0)
        gen = self._generation
        for variant in details.variants:
            call_later(self.pool, self, lambda v=variant: self._read_header(details, v),
                       lambda v: gen == self._generation and self._variant_read(v),
                       lambda why, v=variant: self._variant_failed(v, why))
        if details.kind == "safetensors":
            from .convert_mark import safetensors_outlook
            call_later(self.pool, self, lambda: safetensors_outlook(details, self.n_ctx),
                       lambda r: gen == self._generation and self._show_recommendation(*r), self._error)

    def _show_title(self) -> None:
        details = self.details
        # The hub's licence, else the card's own front matter; a count the hub lacks comes
        # from the safetensors headers (repo_details) or the first GGUF header read.
        licence = details.license or self._card_license
        bits = [f"licence: {html.escape(licence or 'not stated')}",
                "<span style='color:#9a6a00'>gated: needs a token</span>" if details.gated else "not gated"]
        if details.parameters:
            bits.append(f"{formatting.params(details.parameters)} parameters")
        elif details.variants:
            bits.append("parameters: reading header…")
        if details.kind == "safetensors":
            bits.append(f"original {details.safetensors_dtype or '?'}, {formatting.size(details.safetensors_bytes)}")
        self.repo_title.setText(f"<b>{html.escape(details.repo_id)}</b><br>{' · '.join(bits)}")

    def _read_header(self, details, variant):
        from quantdesk.core.hub import fit_variant, read_variant_header
        from quantdesk.core.hub.variants import learn_from_header
        read_variant_header(details.repo_id, variant, details.sha or "main")
        learn_from_header(details, variant)   # the parameter count, when the hub has none
        return fit_variant(variant, n_ctx=self.n_ctx)

    def _variant_read(self, variant) -> None:
        self.variants.update_variant(variant)
        if self.variants.rowCount():   # bits/weight of the others may follow from a count just learnt
            self.variants.dataChanged.emit(self.variants.index(0, 2),
                                           self.variants.index(self.variants.rowCount() - 1, 2))
        self._show_title()

    def _variant_failed(self, variant, why: str) -> None:
        variant.fit_note = why
        self.variants.update_variant(variant)

    def _show_recommendation(self, verdict, result) -> None:
        from .convert_mark import outlook_text
        _rows, best, _note = result
        self.convert_refusal = None if verdict.ok else verdict.reason
        self.recommended_type = best["type"] if best and verdict.ok else None
        self.recommendation.setText(outlook_text(verdict, result, formatting.size))
        self.quantize_button.setEnabled(verdict.ok and not self.fetch.running)
        self.quantize_button.setToolTip("" if verdict.ok else verdict.reason or "")

    def quantize_locally(self) -> bool:
        """Fetch the shown safetensors repo's checkpoint (or resume, or find it cached); the
        Quantize page gets it through quantize_requested. One fetch at a time."""
        if (self.details is None or self.details.kind != "safetensors" or self.fetch.running
                or self.convert_refusal):
            return False
        self.message.hide()
        return self.fetch.start(self.details.repo_id, "main", self.recommended_type)
