"""The one exception type users see for bad input; the CLI turns it into a one-line message and exit 2."""


class SpuriousError(ValueError):
    """Bad input or a request the toolkit cannot honour (message names the problem)."""


class NonSmoothPoint(SpuriousError):
    """A point where the landscape is not differentiable (e.g. a zero ReLU neuron)."""
