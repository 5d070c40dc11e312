"""engine/ never imports Qt: checked in a fresh interpreter, where nothing else has imported it yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "NodeGraphQt", "pyqtgraph", "shiboken6", "Qt", "PyQt5", "PyQt6")

SCRIPT = """
import json, sys
import engine, engine.compiler, engine.cli
engine.cli.build_parser()  # imports every feature module that adds a sub-command
core = sorted(m for m in sys.modules if m.split('.')[0] in QT)

import pkgutil, importlib
failed = {}
for info in pkgutil.walk_packages(engine.__path__, 'engine.'):
    if info.name.endswith('__main__'):
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # reported, not hidden: a module that cannot even be imported is a bug too
        failed[info.name] = repr(exc)
everything = sorted(m for m in sys.modules if m.split('.')[0] in QT)
engine_modules = sorted(m for m in sys.modules if m.startswith('engine'))
import PySide6.QtCore  # the check itself must be able to see Qt once something imports it
detects = any(m.split('.')[0] in QT for m in sys.modules)
print(json.dumps({"core": core, "everything": everything, "failed": failed, "modules": engine_modules,
                  "detects": detects}))
"""


def test_engine_imports_no_qt():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run([sys.executable, "-c", f"QT = {QT!r}\n{SCRIPT}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["core"] == [], "import engine / engine.compiler / engine.cli pulled in Qt"
    assert result["everything"] == [], "some engine module pulls in Qt"
    assert result["failed"] == {}
    assert result["detects"] is True
    assert {"engine.compiler", "engine.cli", "engine.codegen", "engine.inference", "engine.fileio"} <= set(
        result["modules"])
