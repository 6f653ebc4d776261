"""Where a request comes from, the same way for DRF and HTML views."""

import ipaddress

from django.http import HttpRequest
from rest_framework.settings import api_settings


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address: REMOTE_ADDR, or with NUM_PROXIES trusted
    reverse proxies the address they appended to X-Forwarded-For (the same
    rule as DRF's throttles). None when there is no valid address."""
    address = request.META.get("REMOTE_ADDR") or ""
    number_of_proxies = api_settings.NUM_PROXIES
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR")
    if number_of_proxies and forwarded_for:
        addresses = [item.strip() for item in forwarded_for.split(",") if item.strip()]
        if addresses:
            address = addresses[-min(number_of_proxies, len(addresses))]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
