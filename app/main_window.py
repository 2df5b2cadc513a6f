"""The main window: sidebar of pages, File and Help menus, keyboard shortcuts, drag-and-drop of
.gguf files, status bar, the theme."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QMainWindow,
                               QStackedWidget, QVBoxLayout, QWidget)

from . import formatting
from .banner import ErrorBanner
from .drops import local_files
from .lazy_page import LazyPage
from .pages.library import LibraryPage, LibraryService

PAGES = ("Library", "Discover", "Quantize", "Quality", "Chat", "Server", "Settings")
# What the shortcuts do, as Help › Keyboard shortcuts lists them (the actions are built from it).
SHORTCUTS = (("Ctrl+N", "New chat"),
             *((f"Ctrl+{i}", f"Go to {name}") for i, name in enumerate(PAGES, 1)),
             ("Ctrl+,", "Settings"), ("Ctrl+O", "Open GGUF files"), ("F1", "Keyboard shortcuts"),
             ("Esc", "Chat: stop the reply (or leave editing)"), ("Ctrl+Q", "Quit"))


class MainWindow(QMainWindow):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Quantdesk")
        self.resize(1200, 760)
        self.setAcceptDrops(True)
        self.library = LibraryService(self)
        self._models = None  # core.runtime.ModelManager, made with the Chat page
        self._open_errors: list[str] = []

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.addItems(PAGES)
        self.sidebar.setFixedWidth(150)
        self.library_page = LibraryPage(self.library)
        self.library_page.load_planner = lambda: self.models   # "Load settings…" plan line
        # Built on first show (or first use): their modules stay out of the time to first window.
        self.discover_page = LazyPage(self._make_discover)
        self.quantize_page = LazyPage(self._make_quantize)
        self.quality_page = LazyPage(self._make_quality)
        # Built on first use (first show, "Chat with this"): its modules and the chat store
        # stay out of the time to first window.
        self.chat_holder = LazyPage(self._make_chat)
        self.server_page = LazyPage(self._make_server)
        self.settings_holder = LazyPage(self._make_settings)
        self.stack = QStackedWidget()
        for page in (self.library_page, self.discover_page, self.quantize_page, self.quality_page,
                     self.chat_holder, self.server_page, self.settings_holder):
            self.stack.addWidget(page)
        self.banner = ErrorBanner()

        brand = QLabel("  Quantdesk")
        brand.setObjectName("brand")
        brand.setFixedWidth(150)
        left = QWidget()
        left.setObjectName("sidebarColumn")
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(0)
        lv.addWidget(brand)
        lv.addWidget(self.sidebar, 1)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.banner)
        rv.addWidget(self.stack, 1)
        central = QWidget()
        h = QHBoxLayout(central)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(0)
        h.addWidget(left)
        h.addWidget(right, 1)
        self.setCentralWidget(central)
        self.library_count = QLabel()
        self.statusBar().addPermanentWidget(self.library_count)
        self._build_menu()
        self._build_shortcuts()

        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        self.library_page.open_requested.connect(self.open_dialog)
        self.library_page.chat_requested.connect(self.chat_with)
        self.library.opened.connect(self._opened)
        self.library.open_failed.connect(self._open_failed)
        self.library.failed.connect(lambda msg: self.banner.show_messages([msg]))
        self.library.refreshed.connect(self._library_refreshed)
        QTimer.singleShot(0, self.library.refresh)  # after the first paint, off the GUI thread
        from quantdesk.core.settings import pop_warnings
        if warnings := pop_warnings():   # settings.json was set aside: say so, once
            self.banner.show_messages(warnings)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open GGUF…", self, shortcut=QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self.open_dialog)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        self.new_chat_action = QAction("&New chat", self, shortcut=QKeySequence("Ctrl+N"))
        self.new_chat_action.triggered.connect(self.new_chat)
        self.settings_action = QAction("&Settings…", self, shortcut=QKeySequence("Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.settings_action.triggered.connect(lambda: self.show_page("Settings"))
        file_menu.addAction(self.new_chat_action)
        file_menu.addAction(self.open_action)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.shortcuts_action = QAction("&Keyboard shortcuts", self, shortcut=QKeySequence("F1"))
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.about_action = QAction("&About Quantdesk", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.shortcuts_action)
        help_menu.addAction(self.about_action)

    def _build_shortcuts(self) -> None:
        # Ctrl+1…Ctrl+6: the pages in sidebar order.
        self.page_shortcuts = []
        for i, name in enumerate(PAGES, 1):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{i}"), self)
            shortcut.activated.connect(lambda name=name: self.show_page(name))
            self.page_shortcuts.append(shortcut)
        # Esc on the Chat page (any widget in it, the composer included): stop a reply in flight,
        # else leave editing, which is what Esc in the composer did before.
        self.stop_shortcut = QShortcut(QKeySequence("Esc"), self.chat_holder)
        self.stop_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.stop_shortcut.activated.connect(self.stop_generation)

    def new_chat(self) -> None:
        self.show_page("Chat")
        self.chat_page.new_conversation()

    def stop_generation(self) -> None:
        page = self.chat_holder.page
        if page is None:
            return
        if page.is_busy():
            page.stop()
        else:
            page.cancel_edit()

    def show_shortcuts(self) -> None:
        from .help_dialogs import ShortcutsDialog
        ShortcutsDialog(SHORTCUTS, self).open()

    def show_about(self) -> None:
        from .help_dialogs import AboutDialog
        AboutDialog(self).open()

    # ---- pages ---------------------------------------------------------------------------
    def _make_discover(self):
        from .pages.discover import DiscoverPage
        page = DiscoverPage()
        page.downloaded.connect(lambda _path: self.library.refresh())  # lands in the HF cache
        page.quantize_requested.connect(self.quantize_source)
        return page

    @property
    def models(self):
        """The one ModelManager of this window (every model load goes through it)."""
        if self._models is None:
            from quantdesk.core.runtime.models import ModelManager
            self._models = ModelManager()
        return self._models

    def _make_chat(self):
        from .pages.chat.chat_page import ChatPage
        page = ChatPage(self.library, self.models)
        from .context_menus import install_conversation_menu
        install_conversation_menu(page)
        self.library_page.load_settings_saved.connect(page.model_settings_saved)
        if page.store_error:
            self.banner.show_messages([page.store_error])
        return page

    @property
    def chat_page(self):
        """The Chat page, built now if it was not yet."""
        return self.chat_holder.build()

    def _make_quantize(self):
        from .pages.quantize import QuantizePage
        page = QuantizePage(self.library)
        page.chat_requested.connect(self.chat_with)
        page.report_requested.connect(self.quality_report)
        page.quantized.connect(lambda path: self.statusBar().showMessage(
            f"{Path(path).name} is in the library", 15000))
        return page

    def _make_server(self):
        from .pages.server import ServerPage
        return ServerPage(self.library.session, self.models)

    def _make_settings(self):
        from .pages.settings import SettingsPage
        page = SettingsPage()
        page.theme_changed.connect(self.apply_theme)
        return page

    @property
    def settings_page(self):
        return self.settings_holder.build()

    def apply_theme(self, theme: str) -> None:
        """Light, dark or the system's, at once (app/theme.py), for the whole application."""
        from .theme import apply_theme
        apply_theme(theme)

    def _make_quality(self):
        from .pages.quality import QualityReportPage
        return QualityReportPage(library=self.library)

    def quantize_source(self, path: str, qtype: str = "") -> None:
        """Discover's "Quantize locally…" (once the checkpoint is in the HF cache): the Quantize
        page with that source and the recommended type selected."""
        self.show_page("Quantize")
        self.quantize_page.build().set_source(path, qtype or None)

    def quality_report(self, reference: str, model: str) -> None:
        """Quantize page's "Quality report…": the new quant against the source it came from."""
        self.show_page("Quality")
        page = self.quality_page.build()
        page.set_reference(reference)
        page.add_model(model)

    def show_page(self, name: str) -> None:
        self.sidebar.setCurrentRow(PAGES.index(name))

    def current_page(self) -> str:
        return PAGES[self.stack.currentIndex()]

    def chat_with(self, path: str) -> None:
        self.show_page("Chat")
        self.chat_page.chat_with(path)

    # ---- opening models ------------------------------------------------------------------
    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open GGUF model", "",
                                                "GGUF models (*.gguf);;All files (*)")
        self.open_paths(paths)

    def open_paths(self, paths) -> None:
        """Every door ends here: validate and add in a worker, report what happened."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        self._open_errors = []
        self.banner.hide()
        names = ", ".join(Path(p).name for p in paths[:3]) + ("…" if len(paths) > 3 else "")
        self.statusBar().showMessage(f"Checking {names}…")
        self.library.open_paths(paths)

    def open_from_elsewhere(self, paths) -> None:
        """Files handed over by a later launch (or a macOS file-open event): this window comes
        to the front and opens them like a drop."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        self.open_paths(paths)

    def _opened(self, info) -> None:
        self.show_page("Library")
        self.library_page.select_path(info.path)
        self.statusBar().showMessage(f"Added {info.name}: {formatting.model_summary(info)}", 15000)

    def _open_failed(self, path: str, message: str) -> None:
        self._open_errors.append(message)
        self.banner.show_messages(self._open_errors)
        self.statusBar().showMessage(f"Could not open {Path(path).name}", 15000)

    def _library_refreshed(self) -> None:
        n = self.library.model.rowCount()
        self.library_count.setText(f"{n} model{'s' if n != 1 else ''} in the library")

    # ---- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event):  # noqa: N802 - Qt override
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event):  # noqa: N802
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802
        paths = local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ---- exit ----------------------------------------------------------------------------
    def closeEvent(self, event):  # noqa: N802
        # Every built page stops its work: downloads pause (their partial files resume later),
        # a running quantization or comparison is cancelled, not orphaned.
        for holder in (self.chat_holder, self.discover_page, self.quantize_page, self.quality_page,
                       self.server_page, self.settings_holder):
            if holder.page is not None:
                holder.page.shutdown()
        if self._models is not None:
            self._models.shutdown()   # every engine host ends
        self.library.wait_idle(3000)
        super().closeEvent(event)
