"""The ground floor: JAX set-up (float64, devices), the error type users see, JSON numbers and the
cache of compiled kernels. Everything else imports from here; this imports nothing of the package."""
