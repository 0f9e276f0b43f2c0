"""Deprecation warnings name the line that uses the old spelling, so Python's default filters show them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dicomxray
from dicomxray._deprecated import MOVED_MODULES

SRC = Path(dicomxray.__file__).resolve().parents[1]  # the dicomxray under test


@pytest.mark.parametrize("statement", ["import {old}", "from {parent} import {leaf}",
                                       "importlib.import_module('{old}')"], ids=["import", "from", "import_module"])
def test_importing_a_moved_module_warns_at_the_importing_line(tmp_path, statement):
    script = tmp_path / "train.py"
    olds = sorted(MOVED_MODULES)
    lines = [statement.format(old=old, parent=old.rpartition(".")[0], leaf=old.rpartition(".")[2]) for old in olds]
    script.write_text("import importlib\n" + "\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    err = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True).stderr
    for line, old in enumerate(olds, start=2):  # under Python's default filters
        assert f"{script}:{line}: DeprecationWarning: module {old} is deprecated" in err, err
        assert MOVED_MODULES[old] in err


def test_the_suite_turns_our_deprecations_into_errors():
    """pyproject's filterwarnings: an old spelling used by a test (outside ``pytest.warns``) fails it."""
    import warnings

    from dicomxray._deprecated import warn

    with pytest.raises(DeprecationWarning, match="is deprecated and will be removed in dicomxray"):
        warn("x", "y", stacklevel=1)
    with warnings.catch_warnings(record=True) as caught:  # a dependency's deprecation is shown, not raised
        warnings.warn("some_numpy_function is deprecated", DeprecationWarning, stacklevel=1)
    assert caught
