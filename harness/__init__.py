"""The chaos and contract harness: provisioning, faults, workload, history, checkers, reports, CLI."""
