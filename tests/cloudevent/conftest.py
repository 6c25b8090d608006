"""Make the repository importable for these tests.

The project is not installed in the venv and pyproject.toml sets no pytest
``pythonpath``, so a bare ``pytest`` cannot import ``events``. Delete this file
once ``pythonpath = ["."]`` is added under ``[tool.pytest.ini_options]``.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
