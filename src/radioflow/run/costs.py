"""What a step would cost as serverless functions: GB-seconds times a price, plus a price per call.

``cost = gb_seconds * per_gb_second + invocations * per_invocation`` with
``gb_seconds = memory / 2**30 * wall_seconds``, where ``memory`` is the memory the function is
billed for when the backend knows it (Lithops ``runtime_memory``) and otherwise the measured peak
resident memory of the invocation (a lower bound for what a function would have to be given).
A GB here is 1024 MB, as the providers count a function's configured megabytes.

The prices come from the ``cost`` section of radioflow's configuration::

    cost:
      per_gb_second: 0.00001667   # $ per GB-second
      per_invocation: 0.0000002   # $ per invocation (request)
      currency: USD

The defaults are AWS Lambda's on-demand list prices as published by AWS in "How AWS Pricing
Works", section Lambda (https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html,
read 2026-12-04): $0.20 per 1 million requests ($0.0000002 per request) and $0.00001667 for every
GB-second, free tier not deducted. Other providers, regions, architectures (Arm is cheaper) and
tiers have other prices: set your own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import UsageError

#: AWS Lambda list prices (see the module docstring for the source and date).
DEFAULT_PER_GB_SECOND = 0.00001667
DEFAULT_PER_INVOCATION = 0.0000002
DEFAULT_SOURCE = ("AWS Lambda list prices as published by AWS, 'How AWS Pricing Works' "
                  "(docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html), read 2026-12-04")
GIB = float(2 ** 30)


@dataclass(frozen=True)
class PriceModel:
    """Serverless prices: per GB-second of memory and per invocation."""

    per_gb_second: float = DEFAULT_PER_GB_SECOND
    per_invocation: float = DEFAULT_PER_INVOCATION
    currency: str = "USD"
    source: str = DEFAULT_SOURCE

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "PriceModel":
        """The model of the configuration's ``cost`` section (defaults for keys not given)."""
        section = (config or {}).get("cost") or {}
        if not isinstance(section, Mapping):
            raise UsageError("Configuration key 'cost' must be a mapping (per_gb_second, per_invocation, currency).")
        unknown = sorted(set(section) - {"per_gb_second", "per_invocation", "currency", "source"})
        if unknown:
            raise UsageError(f"Configuration section 'cost' has unknown key(s) {', '.join(unknown)}; "
                             "known: per_gb_second, per_invocation, currency, source.")
        prices = {}
        for key, default in (("per_gb_second", DEFAULT_PER_GB_SECOND), ("per_invocation", DEFAULT_PER_INVOCATION)):
            value = section.get(key, default)
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = -1.0
            if number < 0 or isinstance(value, bool):
                raise UsageError(f"Configuration key cost.{key} must be a price of zero or more "
                                 f"(a number, e.g. {default}); got {value!r}.")
            prices[key] = number
        given = "per_gb_second" in section or "per_invocation" in section
        source = str(section.get("source") or ("configuration (cost section)" if given else DEFAULT_SOURCE))
        return cls(prices["per_gb_second"], prices["per_invocation"], str(section.get("currency") or "USD"), source)

    def gb_seconds(self, usage: Mapping[str, float]) -> float | None:
        """Billed (else peak) memory in GB times wall seconds; None when either is unknown."""
        memory = usage.get("billed_memory") or usage.get("peak_memory")
        wall = usage.get("wall_seconds")
        if memory is None or wall is None:
            return None
        return float(memory) / GIB * float(wall)

    def cost(self, usage: Mapping[str, float]) -> float | None:
        """The cost of ``usage`` in :attr:`currency`; None when nothing was measured."""
        gbs = self.gb_seconds(usage)
        if gbs is None:
            return None
        return gbs * self.per_gb_second + float(usage.get("invocations") or 0) * self.per_invocation


__all__ = ["PriceModel", "DEFAULT_PER_GB_SECOND", "DEFAULT_PER_INVOCATION", "DEFAULT_SOURCE"]
