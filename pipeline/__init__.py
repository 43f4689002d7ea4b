"""Reference implementation of the canonical pipeline."""
