import pytest

from longtail.render.capture import Renderer
from longtail.worlds.scenario import list_scenarios

SMALL = (160, 96)


@pytest.fixture(scope="session")
def renderer():
    with Renderer() as r:
        yield r


@pytest.fixture(scope="session")
def small_scenarios():
    """Every built-in scenario at a small resolution, for fast tests."""
    return [s.with_resolution(*SMALL) for s in list_scenarios()]
