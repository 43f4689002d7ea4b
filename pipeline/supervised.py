"""A process the harness supervises stops when the harness is gone.

The harness starts workers and services in sessions of their own, so that a fault can stop one without
touching the others. That also keeps them out of the process-group kill a CI runner sends when it gives up
on a job: a harness killed with SIGKILL left them running, the workers reconnecting forever. So the
harness names itself in HARNESS_SUPERVISOR_PID, and a process started with it stops as on SIGTERM once that
process is gone. (Linux's parent-death signal would act sooner, but it fires when the *thread*
that started the child ends, and the harness restarts workers from its fault threads.) A process started
without the variable, by a person or a service manager, never looks.
"""

from __future__ import annotations

import os

ENV = "HARNESS_SUPERVISOR_PID"


class BadSupervisor(ValueError):
    """HARNESS_SUPERVISOR_PID is set but is not a process id."""


def supervisor_pid() -> int | None:
    """The supervising process's id from the environment, or None when nothing supervises this process."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadSupervisor(f"{ENV} must be the supervising process's id, got {raw!r}; unset it to run alone")
    return int(raw)


def orphaned(supervisor: int | None) -> bool:
    """Whether the supervisor this process was started by has gone.

    Its own child knows at once (its parent changes). A process the SUT's command starts through a wrapper
    (`sh -c`, `uv run`) has the wrapper as parent, so the supervisor's pid is looked up as well; a pid reused
    within the moment would hide the loss, which only leaves the process running as before."""
    if supervisor is None or os.getppid() == supervisor:
        return False
    try:
        os.kill(supervisor, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, and another user's
        return False
    return False
