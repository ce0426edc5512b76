"""The API tests' world: two firms with every role (tests/console_world.py) and firm A's public
file holding books (tests/api/api_world.py)."""
import pytest

from tests.api.api_world import add_books
from tests.console_world import build_world


@pytest.fixture
def world(app):
    world = build_world()
    world.books = add_books(world.a_public, world.a_year, world.a_link)
    return world
