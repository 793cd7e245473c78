"""InfoGen Explorer's desktop app: PySide6 + pyqtgraph over the Qt-free core."""

import os

# Pick the binding before qasync or pyqtgraph look for one (qasync prefers PyQt when both are installed).
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
