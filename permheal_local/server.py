"""`permheal local-aws`: the Local AWS served over HTTP on 127.0.0.1, for the CLI and any AWS tool.

A `ThreadedMotoServer` runs in this process, so the same class-level patches apply to it: Lambda
policies behave like AWS (faithful_lambda) and invoking a permheal function runs its real handler
(lambda_runtime), whose boto3 calls come back to the server through `AWS_ENDPOINT_URL`. The stack is
deployed from template.yaml, a broken `petstore` is seeded, and execution logs written to the server
are delivered to the detector every second, as the account subscription would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from permheal.errors import ConfigError
from permheal_local.aws import MOTO_CONFIG, LocalAws
from permheal_local.aws_model import ENV_FLAG, AwsModel
from permheal_local.builder import REGION, World
from permheal_local.demo import API_NAME, Petstore, build_petstore

HOST = "127.0.0.1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class EndpointWorld(World):
    """A World whose clients talk to one endpoint with fake credentials, whatever the environment says."""

    endpoint: str = ""

    def client(self, service: str) -> Any:
        if service not in self.clients:
            import boto3

            session = boto3.session.Session(
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=self.region,
            )
            self.clients[service] = session.client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]
        return self.clients[service]


@dataclass
class LocalAwsServer:
    """A running Local AWS server; `stop()` shuts it down and undoes every process-wide change."""

    endpoint: str
    port: int
    local: LocalAws
    petstore: Petstore | None
    _server: Any
    _saved_config: dict[str, Any]
    _saved_env: dict[str, str | None]
    _patched_policies: bool
    _stopping: threading.Event = field(default_factory=threading.Event)
    _delivery: threading.Thread | None = None
    delivery_errors: list[str] = field(default_factory=list)
    model: AwsModel | None = None

    def start_delivery(self, every: float) -> None:
        """Deliver new execution-log lines to the detector every `every` seconds, in the background."""

        def loop() -> None:
            while not self._stopping.wait(every):
                try:
                    self.local.flush_logs()
                except Exception as exc:  # keep serving; the error is shown, not swallowed
                    self.delivery_errors.append(f"{type(exc).__name__}: {exc}")

        self._delivery = threading.Thread(target=loop, name="permheal-log-delivery", daemon=True)
        self._delivery.start()

    def stop(self) -> None:
        from permheal_local import faithful_apigateway, faithful_apigatewayv2, faithful_lambda, lambda_runtime

        self._stopping.set()
        if self._delivery is not None:
            self._delivery.join(timeout=10)
        if self.model is not None:
            self.model.uninstall()
        with contextlib.suppress(Exception):
            self.local.settle()
        self.local.close()
        try:
            _moto_api(self.endpoint, "config", self._saved_config)
            _moto_api(self.endpoint, "reset", {})
        finally:
            self._server.stop()
            lambda_runtime.uninstall()
            if self._patched_policies:
                faithful_lambda.uninstall()
                faithful_apigateway.uninstall()
                faithful_apigatewayv2.uninstall()
            _restore(self._saved_env)


def start_local_aws(
    port: int = 0,
    *,
    seed: bool = True,
    deliver_every: float | None = 1.0,
    parameters: Mapping[str, str] | None = None,
    model: AwsModel | None = None,
) -> LocalAwsServer:
    """Serve moto on 127.0.0.1:`port` (0 = any free port) with permheal's stack deployed into it.

    `model` (permheal_local.aws_model) is installed once the stack and the seed are in place, so
    setting up is not throttled; from then on every request pays its latency and quotas.
    """
    from moto.server import ThreadedMotoServer

    from permheal_local import faithful_apigateway, faithful_apigatewayv2, faithful_lambda, lambda_runtime

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one stderr line per request
    port = _free_port(port)
    endpoint = f"http://{HOST}:{port}"
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    # moto's Step Functions interpreter calls other services on localhost:$MOTO_PORT.
    saved_env = {"MOTO_PORT": os.environ.get("MOTO_PORT")}
    os.environ["MOTO_PORT"] = str(port)
    patched_policies = not faithful_lambda.is_installed()
    try:
        saved_config = _moto_api(endpoint, "config")
        _moto_api(endpoint, "config", dict(MOTO_CONFIG))
        faithful_lambda.install()
        faithful_apigateway.install()
        faithful_apigatewayv2.install()
        lambda_runtime.install(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                **FAKE_CREDENTIALS,
            }
        )
        world = EndpointWorld(REGION, endpoint=endpoint)
        wanted = {"AllowedApis": API_NAME} if seed else {}
        local = LocalAws.deploy(world, {**wanted, **(parameters or {})})
    except BaseException:
        server.stop()
        lambda_runtime.uninstall()
        if patched_policies:
            faithful_lambda.uninstall()
            faithful_apigateway.uninstall()
            faithful_apigatewayv2.uninstall()
        _restore(saved_env)
        raise
    handle = LocalAwsServer(endpoint, port, local, None, server, saved_config, saved_env, patched_policies)
    if seed:
        handle.petstore = build_petstore(world)
    if model is not None:
        lam = world.client("lambda")
        handlers = {
            str(lam.get_function_configuration(FunctionName=name)["Handler"]).rpartition(".")[0]
            for name in local.stack.functions.values()
        }
        model.measure_imports(sorted(handlers))
        model.install()
        handle.model = model
    if deliver_every:
        handle.start_delivery(deliver_every)
    return handle


def serve(port: int, out: TextIO) -> None:
    """Start the server, print how to use it, and block until Ctrl-C."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)  # this process talks to the local server only
    out.write(f"Starting the permheal Local AWS on {HOST}:{port} ...\n")
    out.flush()
    started = time.perf_counter()
    model = AwsModel() if os.environ.get(ENV_FLAG) == "1" else None
    handle = start_local_aws(port, model=model)
    with contextlib.suppress(ValueError):  # only the main thread may set handlers; Ctrl-C works anyway
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        out.write(banner(handle, time.perf_counter() - started))
        out.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        out.write("\nStopping.\n")
        out.flush()
    finally:
        handle.stop()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def banner(handle: LocalAwsServer, seconds: float) -> str:
    stack, subscription = handle.local.stack, handle.local.subscription
    env = f"AWS_ENDPOINT_URL={handle.endpoint} AWS_DEFAULT_REGION={REGION} " + " ".join(
        f"{k}={v}" for k, v in FAKE_CREDENTIALS.items()
    )
    lines = [
        f"permheal Local AWS ready on {handle.endpoint} in {seconds:.1f} s (moto, no account needed)",
        *(
            ["  AWS model on: API latency, Lambda/API Gateway quotas, cold starts (permheal_local.aws_model)"]
            if handle.model is not None
            else []
        ),
        f"  stack '{stack.name}' from template.yaml",
        f"    state machine  {stack.state_machine_arn}",
        f"    topic          {stack.topic_arn}",
        f"    detector       {subscription.destination}, fed every second with log lines matching "
        f"{subscription.pattern.text}",
    ]
    if handle.petstore is not None:
        lines.append(f"  seeded API '{handle.petstore.name}' ({handle.petstore.api_id}): broken, allowlisted")
    lines += [
        "",
        "Try it from another shell:",
        f"  export {env}",
        f"  export PERMHEAL_STATE_MACHINE_ARN={stack.state_machine_arn}",
        "  permheal scan",
        f"  permheal remediate --api {API_NAME}",
        "  permheal scan",
        "",
        "Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _free_port(port: int) -> int:
    """`port` if it can be bound (moto's server thread would hang on a busy one), or any free port for 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from exc
        return int(probe.getsockname()[1])


def _moto_api(endpoint: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's own control API (`/moto-api/config`, `/moto-api/reset`): GET without a body, else POST."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{action}", data=data, method="GET" if data is None else "POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP proxy
    with opener.open(request, timeout=30) as response:
        text = response.read().decode() or "{}"
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _restore(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
