import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

import spurious  # noqa: E402,F401  (float64 on)
