"""tests/other_pipeline: a second implementation of the RFC's pipeline and its tests (README.md). A package so
its test module gets a name of its own under tests/."""
