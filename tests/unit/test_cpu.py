"""cpu_seconds reads real processes' CPU time from /proc: a busy one shows it, a sleeping one does not."""

from __future__ import annotations

import subprocess
import sys
import time

from harness.perf.cpu import cpu_seconds

# Spins for 0.4 s of CPU, says so, then sleeps.
BUSY = (
    "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    "print('spun', flush=True)\ntime.sleep(30)"
)


def test_a_busy_process_shows_its_cpu_time_and_a_sleeping_one_none() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert busy.stdout is not None and busy.stdout.readline() == "spun\n"
        first = cpu_seconds([busy.pid])
        assert first is not None and 0.4 <= first < 1.5  # 0.4 s of spinning, plus the interpreter's start
        time.sleep(0.3)
        later = cpu_seconds([busy.pid])
        assert later is not None and later - first <= 0.02  # asleep now: at most a tick more
        idle_cpu = cpu_seconds([idle.pid])
        assert idle_cpu is not None and idle_cpu < 0.3
        both = cpu_seconds([busy.pid, idle.pid])
        assert both is not None and abs(both - (later + idle_cpu)) <= 0.02  # summed over processes
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()
        if busy.stdout is not None:
            busy.stdout.close()


def test_a_process_that_is_gone_reads_as_none() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds([gone.pid]) is None
