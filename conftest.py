"""Root conftest: shared fixtures live in tests/fixtures_*.py, one module per concern."""

pytest_plugins = [
    "tests.fixtures_audio",
    "tests.fixtures_model",
    "tests.fixtures_torch",
    "tests.fixtures_offline",
]
