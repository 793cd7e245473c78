"""The app's settings store (window layout, recent files)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

SETTINGS_ENV = "INFOGEN_SETTINGS"


def settings() -> QSettings:
    """$INFOGEN_SETTINGS (an INI file) when set, as the tests do, else Qt's per-user place."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("InfoGen", "InfoGen Explorer")
