"""permheal: a self-healing guardrail for API Gateway -> Lambda invoke permissions."""

__version__ = "0.1.0"
