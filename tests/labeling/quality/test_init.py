"""labeling.quality is a pure library: importing it never imports Django."""
from tests.conftest import imports_without_django


def test_importing_the_library_and_every_submodule_leaves_django_unimported():
    assert imports_without_django("labeling.quality") >= 4
