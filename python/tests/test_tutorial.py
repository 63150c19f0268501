"""The committed pyhf tutorial (examples/python/tutorial.py) runs with
`import anagrad as pyhf` and reproduces pyhf's numbers."""

import importlib.util

from conftest import REPO


def test_tutorial_gives_pyhf_numbers(capsys):
    spec = importlib.util.spec_from_file_location("tutorial", REPO / "examples" / "python" / "tutorial.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    assert tutorial.main([]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "all numbers agree with pyhf" in out
