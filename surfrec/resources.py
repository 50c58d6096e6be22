"""Process resources reported by benchmarks and batch runs."""

from __future__ import annotations


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (VmHWM on Linux, ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)  # bytes on macOS, KiB on Linux
