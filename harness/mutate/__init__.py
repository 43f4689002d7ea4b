"""`harness mutate`: how strong a suite is, measured on a team's pipeline by mutants of its SQL functions and
triggers (harness/mutate/README.md)."""
