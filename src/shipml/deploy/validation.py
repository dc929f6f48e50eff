"""Checks on the options of generated deployment files, before anything is written.

A wrong name or size would otherwise surface much later, as an API server or Azure
rejecting the file; here it fails at once with the rule it broke and what to do.
"""

from __future__ import annotations

import re

from shipml.errors import ShipmlError

# RFC 1035 label: what Kubernetes requires of Service names (and so of ours).
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# RFC 1123 label: namespaces and most other Kubernetes names.
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
SCALE = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


class ManifestError(ShipmlError):
    """An option of a generated deployment file is wrong; nothing was written."""

    code = "invalid_deploy_option"


def dns_label(value: str, what: str, *, start_with_letter: bool = True) -> str:
    """``value`` if it is a valid DNS label (lowercase, digits, '-', at most 63 chars)."""
    pattern = DNS_LABEL if start_with_letter else DNS_1123_LABEL
    if len(value) > 63 or not pattern.match(value):
        first = "a lowercase letter" if start_with_letter else "a lowercase letter or digit"
        raise ManifestError(
            f"{what} {value!r} is not a valid name: use at most 63 lowercase letters, digits "
            f"and '-', starting with {first} and ending with a letter or digit"
        )
    return value


def dns_subdomain(value: str, what: str, example: str = "iris-api-keys") -> str:
    """``value`` if it is a DNS subdomain: what Kubernetes wants of Secret names and hosts."""
    if len(value) > 253 or not DNS_SUBDOMAIN.match(value):
        raise ManifestError(
            f"{what} {value!r} is not a valid name: use lowercase letters, digits, '-' and "
            f"'.', starting and ending with a letter or digit, e.g. {example}"
        )
    return value


def derived_name(model_name: str) -> str:
    """A DNS label made from a model name (which may hold '.' and '_')."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", name)[:63].rstrip("-")


def quantity(value: str, what: str) -> float:
    """A Kubernetes quantity (``500m``, ``1``, ``512Mi``, ``1.5Gi``) as a number."""
    match = QUANTITY.match(value)
    if not match:
        raise ManifestError(
            f"{what} {value!r} is not a Kubernetes quantity: write e.g. 500m or 1 for CPU, "
            "512Mi or 2Gi for memory"
        )
    number = float(match.group(1)) * SCALE[match.group(2) or ""]
    if number <= 0:
        raise ManifestError(f"{what} must be more than zero, got {value!r}")
    return number


def request_within_limit(request: str, limit: str, what: str) -> None:
    if quantity(request, f"{what} request") > quantity(limit, f"{what} limit"):
        raise ManifestError(
            f"the {what} request {request} is more than its limit {limit}: raise the limit "
            "or lower the request"
        )


def at_least(value: int, minimum: int, what: str) -> int:
    if value < minimum:
        raise ManifestError(f"{what} must be at least {minimum}, got {value}")
    return value


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ManifestError(f"port must be between 1 and 65535, got {value}")
    return value


def duration(value: str, what: str) -> str:
    """A Prometheus duration such as ``30s``, ``1m`` or ``1m30s``."""
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", value):
        raise ManifestError(
            f"{what} must be a Prometheus duration such as 30s or 1m, got {value!r}"
        )
    return value
