import pytest

from adoption.services import activity_memo_forget


@pytest.fixture(autouse=True)
def _activity_memo_forgotten():
    """User ids come back between tests: start each with an empty memo."""
    activity_memo_forget()
    yield
    activity_memo_forget()
