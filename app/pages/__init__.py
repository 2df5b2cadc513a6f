"""The window's pages, one package each (library/, discover/, quality/, ...): a page widget, its
item models, and the thin adapters that run the runtime layer through app/bridge."""
