pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.app",
    "tests.fixtures.pipeline",
    "tests.fixtures.cluster",
]
