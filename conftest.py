"""The suite's pytest plugin is cisaudit.plugin: pytest.ini loads it with `-p cisaudit.plugin`
(or `pip install .` registers it as a pytest11 entry point). Nothing else is configured here."""
