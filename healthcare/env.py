"""Typed readers for environment variables that fail loudly on a malformed value.

Settings must never guess: a typo such as DEBUG=ture or PAGE_SIZE=fifty stops the process at start
with a message naming the variable, instead of silently running with a default.
"""

import ipaddress
import os
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = {"1", "true", "yes", "on"}
# A DNS name: labels of letters, digits and hyphens, separated by dots.
HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
FALSE_VALUES = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    if raw.lower() in TRUE_VALUES:
        return True
    if raw.lower() in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, not {raw!r}.")


def env_int(name: str, default: int, *, min_value: int, max_value: int) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None
    if not min_value <= value <= max_value:
        raise ImproperlyConfigured(f"{name} must be between {min_value} and {max_value}, not {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as 20/min: a positive count, a slash, and s/min/hour/day."""
    raw = env_str(name) or default
    count, _, period = raw.partition("/")
    if not count.isdigit() or int(count) < 1 or not period or period[0] not in "smhd":
        raise ImproperlyConfigured(f"{name} must look like 20/min (count/s|min|hour|day), not {raw!r}.")
    return raw


def env_origins(name: str) -> list[str]:
    """Comma-separated web origins (scheme://host[:port], no path), as browsers send them in `Origin`."""
    origins = env_list(name, [])
    for origin in origins:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest or origin != origin.lower():
            raise ImproperlyConfigured(
                f"{name} must list origins like https://app.example.org (scheme, host, optional port; "
                f"lower case; no path or trailing slash), not {origin!r}."
            )
    return origins


def env_time_zone(name: str, default: str) -> ZoneInfo:
    """An IANA time zone name such as Europe/Berlin."""
    raw = env_str(name) or default
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone name such as Europe/Berlin or UTC, not {raw!r}."
        ) from None


def env_host(name: str, default: str) -> str:
    """An IP address or a host name to listen on; it is written into nginx's configuration, so nothing else."""
    raw = env_str(name) or default
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    if len(raw) > 253 or not HOST_NAME.fullmatch(raw):
        raise ImproperlyConfigured(f"{name} must be an IP address or a host name, not {raw!r}.")
    return raw
