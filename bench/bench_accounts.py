"""Sign-in API against a bare Django view, both served by the same daphne
in the same run: latency per request and requests per second."""

import http.client
import json
import threading
import time
from collections.abc import Callable

from bench.core import Daphne, Result, Services, median, percentile
from tests.live import free_port

CLIENTS = 4
REQUESTS_PER_CLIENT = 150


def _hammer(
    port: int, path: str, body_for: Callable[[int, int], dict], clients: int, per_client: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        try:
            _client(number)
        except BaseException as error:
            errors.append(error)

    def _client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        own: list[float] = []
        for index in range(per_client):
            body = json.dumps(body_for(number, index))
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            own.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
        connection.close()
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return latencies, len(latencies) / elapsed


def run() -> list[Result]:
    services = Services()
    server = Daphne(services.environment, free_port())
    run_id = int(time.time()) % 1000

    def phone(number: int, index: int) -> dict:
        # Unique numbers, so that no resend limit applies: +7 9RR CC IIII.
        return {"phone": f"+79{run_id:03d}{number:02d}{index:04d}"}

    try:
        _hammer(server.port, "/bench/bare/", phone, 2, 20)  # warm up both paths
        _hammer(server.port, "/api/v1/auth/code/", lambda n, i: phone(n + 50, i), 2, 20)
        bare, bare_rate = _hammer(server.port, "/bench/bare/", phone, CLIENTS, REQUESTS_PER_CLIENT)
        api, api_rate = _hammer(server.port, "/api/v1/auth/code/", phone, CLIENTS, REQUESTS_PER_CLIENT)
    finally:
        server.stop()
        services.close()
    api_p50, bare_p50 = median(api) * 1000, median(bare) * 1000
    api_p95, bare_p95 = percentile(api, 0.95) * 1000, percentile(bare, 0.95) * 1000
    return [
        Result("accounts.sign_in_code_p50", api_p50, "ms", bare_p50, "ratio <= 10", api_p50 / bare_p50 <= 10),
        Result("accounts.sign_in_code_p95", api_p95, "ms", bare_p95, "ratio <= 10", api_p95 / bare_p95 <= 10),
        Result(
            "accounts.sign_in_code_throughput",
            api_rate,
            "req/s",
            bare_rate,
            "ratio >= 0.1",
            api_rate / bare_rate >= 0.1,
        ),
    ]
