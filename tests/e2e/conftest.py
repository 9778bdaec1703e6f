import pytest


@pytest.fixture(autouse=True)
def _stack(aws):
    yield
