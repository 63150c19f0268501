import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def load(path):
    with open(path, encoding="utf8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def example_ws():
    import anagrad

    return anagrad.Workspace(load(REPO / "examples" / "workspace.json"))


def rel(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
