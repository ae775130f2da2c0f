#!/usr/bin/env python3
"""The inspector's export checker; it lives in monitor/archive/verify_export.py and every
export folder carries a copy. This entry point runs that file (no monitor import)."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "monitor" / "archive" / "verify_export.py"),
               run_name="__main__")
