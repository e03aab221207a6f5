import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# One kernel cache for the whole run, shared by the xdist workers (they inherit the environment) and the
# commands the tests start, and removed at the end: nothing is written to the user's cache folder.
CONTROLLER = "PYTEST_XDIST_WORKER" not in os.environ  # the one process that makes and removes it
if CONTROLLER:
    os.environ["SPURIOUS_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="spurious-test-kernels-")

import spurious  # noqa: E402,F401  (float64 on)


def pytest_unconfigure(config):
    if CONTROLLER:
        shutil.rmtree(os.environ["SPURIOUS_COMPILE_CACHE"], ignore_errors=True)
