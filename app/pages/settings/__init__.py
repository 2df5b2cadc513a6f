"""The Settings page: data folders, HF token, new-chat defaults, theme (core.settings underneath)."""
from .settings_page import SettingsPage  # noqa: F401
