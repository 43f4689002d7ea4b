"""The system under test and its processes: the SUT file, the worker and service processes, the running
system, its network links, and reading one entity's path back from its database."""
