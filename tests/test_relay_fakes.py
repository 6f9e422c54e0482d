"""Specification of ``relay-fakes serve``: local APNs and FCM fakes for QA, run as a real
process on real ports, with a real relay process sending test pushes through them."""

from __future__ import annotations

import asyncio
import signal
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from relay.push.providers import configuration_problem
from relay.settings import load_settings
from tests.support import Api, RelayProcess, free_port, run_cli, write_config

RELAY_FAKES = Path(sys.executable).parent / "relay-fakes"
STARTUP_SECONDS = 20
IOS = "a1b2" * 16
ANDROID = "fcm-token-1:APA91b" + "x" * 40
DEAD_IOS = "dead" + "0" * 60
DEAD_ANDROID = "dead-fcm:APA91b" + "y" * 40


def masked(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}"


@dataclass
class Fakes:
    """A running ``relay-fakes serve``; its stdout and stderr go to files (a pipe could fill)."""

    process: subprocess.Popen[bytes]
    config_path: Path
    stdout_path: Path
    stderr_path: Path
    apns_port: int
    fcm_port: int

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait_for_config(self) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.config_path.exists():
            if self.process.poll() is not None:
                raise AssertionError(f"relay-fakes exited early: {self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError("relay-fakes wrote no config")
            time.sleep(0.02)
        return self.config_path.read_text(encoding="utf-8")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def fakes_command(*args: str) -> list[str]:
    return [str(RELAY_FAKES), *args]


def serve_args(apns_port: int, fcm_port: int, config_path: Path, *extra: str) -> list[str]:
    ports = ["--apns-port", str(apns_port), "--fcm-port", str(fcm_port)]
    return ["serve", *ports, "--write-config", str(config_path), *extra]


def run_fakes(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A ``relay-fakes`` run that is expected to end by itself (an error)."""
    return subprocess.run(fakes_command(*args), capture_output=True, text=True, timeout=30, cwd=cwd)


def start_fakes(directory: Path, *extra: str) -> Fakes:
    apns_port, fcm_port = free_port(), free_port()
    config_path = directory / "relay-fakes.toml"
    stdout_path, stderr_path = directory / "fakes.out", directory / "fakes.err"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            fakes_command(*serve_args(apns_port, fcm_port, config_path, *extra)),
            stdout=stdout,
            stderr=stderr,
        )
    return Fakes(process, config_path, stdout_path, stderr_path, apns_port, fcm_port)


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[Fakes]:
    """``relay-fakes serve`` for app ``shop``, stopped at teardown whatever happened."""
    running = start_fakes(tmp_path, "--app", "shop")
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Stack:
    """relay-fakes and a relay process configured by the block it wrote, plus an admin key."""

    fakes: Fakes
    relay: RelayProcess
    relay_config: Path
    admin_key: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("relay-fakes")
    fakes = start_fakes(directory)
    relay: RelayProcess | None = None
    try:
        block = fakes.wait_for_config()
        relay_port = free_port()
        config = write_config(
            directory / "relay.toml", directory / "relay.db", relay_port, extra="\n" + block
        )
        relay = RelayProcess(config, directory, relay_port)
        asyncio.run(relay.start())
        created = run_cli("keys", "create", "--role", "admin", "--config", str(config))
        assert created.returncode == 0, created.stderr
        yield Stack(fakes, relay, config, created.stdout.strip().splitlines()[-1])
    finally:
        if relay is not None and relay.process is not None:
            relay.stop()
        fakes.stop()


async def send_test_push(stack: Stack, token: str, platform: str, title: str) -> dict[str, object]:
    """Register ``token`` through relay's API, send it a test push; the one result."""
    async with aiohttp.ClientSession() as session:
        admin = Api(session, stack.relay.base_url, stack.admin_key)
        registered = await admin.put(f"/v1/devices/{token}", {"platform": platform})
        assert registered.status == 201, registered.text
        sent = await admin.post("/v1/test-pushes", {"token": token, "title": title, "body": "b"})
        assert sent.status == 200, sent.text
        (result,) = sent.body["results"]
        return result


def lines_about(fakes: Fakes, token: str) -> list[str]:
    return [line for line in fakes.stdout.splitlines() if masked(token) in line]


# -- the config it writes -------------------------------------------------------------------


def test_serve_writes_an_apps_block_that_relay_loads_with_both_platforms_configured(
    fakes: Fakes,
) -> None:
    fakes.wait_for_config()
    settings = load_settings(fakes.config_path, environ={})
    app = settings.app("shop")
    assert app is not None
    assert app.apns.endpoint == f"http://127.0.0.1:{fakes.apns_port}"
    assert app.fcm.endpoint == f"http://127.0.0.1:{fakes.fcm_port}"
    assert configuration_problem(app, "ios") is None
    assert configuration_problem(app, "android") is None


def test_the_apps_block_names_apple_shaped_ids_and_no_fcm_credentials(fakes: Fakes) -> None:
    (app,) = tomllib.loads(fakes.wait_for_config())["apps"]
    assert app["id"] == "shop"
    assert len(app["apns"]["key_id"]) == 10
    assert len(app["apns"]["team_id"]) == 10
    assert app["apns"]["topic"]
    assert app["fcm"]["project_id"]
    assert "credentials_path" not in app["fcm"]


def test_the_signing_key_is_a_private_p256_p8_file_beside_the_config(fakes: Fakes) -> None:
    (app,) = tomllib.loads(fakes.wait_for_config())["apps"]
    key_path = Path(app["apns"]["key_path"])
    assert key_path.is_absolute()
    assert key_path == fakes.config_path.parent / "relay-fakes-shop.p8"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8


def test_the_config_replaces_an_existing_file_in_one_step(tmp_path: Path) -> None:
    config_path = tmp_path / "relay-fakes.toml"
    config_path.write_text("# old\n", encoding="utf-8")
    old_inode = config_path.stat().st_ino
    running = start_fakes(tmp_path)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while (text := config_path.read_text(encoding="utf-8")) == "# old\n":
            assert running.process.poll() is None, running.stderr
            assert time.monotonic() < deadline, "the config was never replaced"
        assert tomllib.loads(text)["apps"], "a reader saw a partly written config"
        assert config_path.stat().st_ino != old_inode  # renamed over, not rewritten in place
        leftovers = {p.name for p in tmp_path.iterdir()} - {
            "relay-fakes.toml",
            "relay-fakes-default.p8",
            "fakes.out",
            "fakes.err",
        }
        assert leftovers == set()
    finally:
        running.stop()


# -- pushes through relay ---------------------------------------------------------------------


async def test_an_ios_push_is_sent(stack: Stack) -> None:
    result = await send_test_push(stack, IOS, "ios", "Hello iOS")
    assert result["status"] == "sent", result


async def test_an_android_push_is_sent(stack: Stack) -> None:
    result = await send_test_push(stack, ANDROID, "android", "Hello Android")
    assert result["status"] == "sent", result


@pytest.mark.parametrize(("token", "platform"), [(DEAD_IOS, "ios"), (DEAD_ANDROID, "android")])
async def test_a_token_starting_with_dead_is_an_invalid_token(
    stack: Stack, token: str, platform: str
) -> None:
    result = await send_test_push(stack, token, platform, "Anyone there?")
    assert result["status"] == "invalid_token", result


@pytest.mark.parametrize(
    ("token", "platform"),
    [("c0ffee" * 10 + "beef", "ios"), ("fcm-log:APA91b" + "z" * 40, "android")],
)
async def test_each_push_is_one_output_line_with_the_payload_and_a_masked_token(
    stack: Stack, token: str, platform: str
) -> None:
    title = f"Title for the {platform} log"
    await send_test_push(stack, token, platform, title)
    (line,) = lines_about(stack.fakes, token)
    assert line.split()[1] == ("apns" if platform == "ios" else "fcm")
    assert title in line
    assert "CIO-Delivery-ID" in line  # the payload in Customer.io's layout, as the device gets it


async def test_the_output_never_holds_a_whole_token(stack: Stack) -> None:
    tokens = [f"{'ab' * 30}0001", f"dead{'cd' * 30}", f"fcm-whole:{'q' * 50}"]
    for token, platform in zip(tokens, ["ios", "ios", "android"], strict=True):
        await send_test_push(stack, token, platform, "t")
        assert lines_about(stack.fakes, token), "the push was not shown"
    output = stack.fakes.stdout + stack.fakes.stderr
    assert not [token for token in tokens if token in output]


async def test_relay_push_test_on_the_command_line_is_sent_through_the_fakes(
    stack: Stack,
) -> None:
    token = "f00dcafe" * 8
    config = str(stack.relay_config)
    app_key = run_cli("keys", "create", "--role", "app", "--config", config).stdout.split()[-1]
    async with aiohttp.ClientSession() as session:
        app = Api(session, stack.relay.base_url, app_key)
        registered = await app.put(f"/v1/devices/{token}", {"platform": "ios"})
        assert registered.status == 201, registered.text
    title = ["--title", "From the CLI", "--body", "b"]
    pushed = run_cli("push", "test", "--token", token, *title, "--config", config)
    assert pushed.returncode == 0, pushed.stderr
    assert "sent" in pushed.stdout
    assert "From the CLI" in lines_about(stack.fakes, token)[0]


# -- failures and shutdown --------------------------------------------------------------------


@pytest.mark.parametrize("busy", ["--apns-port", "--fcm-port"])
def test_a_busy_port_exits_1_with_one_line_and_no_traceback(tmp_path: Path, busy: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy_port = holder.getsockname()[1]
        ports = {"--apns-port": free_port(), "--fcm-port": free_port(), busy: busy_port}
        config_path = tmp_path / "relay-fakes.toml"
        result = run_fakes(*serve_args(ports["--apns-port"], ports["--fcm-port"], config_path))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("relay-fakes: error: ")
    assert str(busy_port) in line
    assert not config_path.exists()


def test_an_unwritable_config_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    config_path = tmp_path / "no-such-directory" / "relay-fakes.toml"
    result = run_fakes(*serve_args(free_port(), free_port(), config_path))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("relay-fakes: error: cannot write ")


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--apns-port", "1", "--write-config", "x.toml"],  # no --fcm-port
        serve_args(1, 2, Path("x.toml"), "--app", "a/b"),  # an app id that is no file name
        serve_args(1, 65536, Path("x.toml")),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = run_fakes(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_it_cleanly_with_status_0(fakes: Fakes, sig: int) -> None:
    fakes.wait_for_config()
    assert fakes.stop(sig) == 0
    assert "Traceback" not in fakes.stderr
    assert "stopped" in fakes.stdout


def test_it_prints_its_ports_and_the_config_path_on_start(fakes: Fakes) -> None:
    fakes.wait_for_config()
    deadline = time.monotonic() + STARTUP_SECONDS
    while "Ctrl-C" not in fakes.stdout:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert f"127.0.0.1:{fakes.apns_port}" in fakes.stdout
    assert f"127.0.0.1:{fakes.fcm_port}" in fakes.stdout
    assert str(fakes.config_path.resolve()) in fakes.stdout


def test_python_m_relay_fakes_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relay_fakes", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "--write-config" in result.stdout
