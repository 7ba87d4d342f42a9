"""Home Assistant + hanport + the simulated meter, for trying the integration by hand.

What it does, each step skipped when already done:

1. Installs what a running Home Assistant needs beyond the test venv (the frontend, the
   always-on integrations' libraries) into ``.develop/pydeps`` with pip ``--target``, and
   runs ``hass --skip-pip`` with that directory appended to ``sys.path``: the shared test
   venv stays exactly as ``scripts/setup`` built it.
2. Writes ``.develop/config/configuration.yaml`` with an explicit list of integrations
   (not ``default_config``) and links ``custom_components/hanport`` into the config dir.
3. Starts the simulator (``python -m custom_components.hanport.han simulate --tcp``).
4. Starts ``hass -c .develop/config`` and waits for the HTTP API.
5. Onboards through the onboarding API (owner ``dev``/``dev``), or logs in as that user.
6. Creates the hanport entry through the REST config-flow API, exactly as the UI does:
   menu -> network -> host/port -> the listening step -> entry. An entry pointing at
   another port is removed first.

Then it waits until Ctrl-C (both processes are stopped), or with ``--check`` it waits
until hanport's sensors show live values, prints them and stops everything.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / ".develop"
CONFIG = DEV / "config"
PYDEPS = DEV / "pydeps"
USER = "dev"
PASSWORD = "dev"  # a local development instance; printed at start

CONFIGURATION = """\
# Written by scripts/develop. Delete .develop/config (or use --fresh) to start over.
homeassistant:
  name: hanport development
  country: "NO"
  currency: NOK
  language: en
  time_zone: Europe/Oslo
  unit_system: metric
  latitude: 59.91
  longitude: 10.75
  elevation: 20

http:
  server_port: {http_port}

# The integrations the UI, the Energy dashboard and hanport need, listed explicitly.
# usb: the serial-port picker and USB discovery of the setup flow.
usb:
frontend:
api:
config:
recorder:
  purge_keep_days: 7
history:
logbook:
energy:
system_health:
logger:
  default: warning
  logs:
    custom_components.hanport: debug
    homeassistant.components.usb: info
"""


def log(message: str) -> None:
    print(f"develop: {message}", flush=True)


# --- setup -------------------------------------------------------------------------


CONFIGURED = (
    "usb",
    "frontend",
    "api",
    "config",
    "recorder",
    "history",
    "logbook",
    "energy",
    "system_health",
    "logger",
)
"""The integrations configuration.yaml sets up (keep in sync with CONFIGURATION)."""


def _components() -> Path:
    spec = importlib.util.find_spec("homeassistant")
    if spec is None or spec.origin is None:
        sys.exit("develop: Home Assistant is not installed in this Python")
    return Path(spec.origin).parent / "components"


def _missing_requirements() -> list[str]:
    """Pinned requirements of what Home Assistant will set up that this venv lacks.

    The test venv carries only what tests need; a running instance also sets up the
    frontend and the always-on integrations (conversation, camera, ...).
    """
    from homeassistant.bootstrap import DEFAULT_INTEGRATIONS  # noqa: PLC0415 - heavy

    components = _components()
    todo = set(DEFAULT_INTEGRATIONS) | set(CONFIGURED)
    seen: set[str] = set()
    wanted: set[str] = set()
    while todo:
        domain = todo.pop()
        seen.add(domain)
        manifest_path = components / domain / "manifest.json"
        if not manifest_path.exists():
            continue
        manifest = json.loads(manifest_path.read_text())
        wanted.update(manifest.get("requirements", []))
        todo.update(set(manifest.get("dependencies", [])) - seen)
    missing = []
    for requirement in sorted(wanted):
        name, _, version = requirement.partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if version and installed != version:
            missing.append(requirement)
    return missing


def ensure_requirements() -> None:
    """Install what is missing into .develop/pydeps (never into the shared .venv)."""
    sys.path.append(str(PYDEPS))  # what an earlier run installed counts as installed
    missing = _missing_requirements()
    if not missing:
        return
    log(f"installing into {PYDEPS.relative_to(ROOT)}: {' '.join(missing)}")
    constraints = _components().parent / "package_constraints.txt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(PYDEPS),
            "--constraint",
            str(constraints),
            *missing,
        ],
        check=True,
    )


def ensure_config(http_port: int, fresh: bool) -> None:
    if fresh and CONFIG.exists():
        log("--fresh: removing the old config dir")
        shutil.rmtree(CONFIG)
    CONFIG.mkdir(parents=True, exist_ok=True)
    configuration = CONFIG / "configuration.yaml"
    if not configuration.exists():
        configuration.write_text(CONFIGURATION.format(http_port=http_port))
    components = CONFIG / "custom_components"
    components.mkdir(exist_ok=True)
    link = components / "hanport"
    if not link.is_symlink():
        link.symlink_to(ROOT / "custom_components" / "hanport")


# --- processes ---------------------------------------------------------------------


def wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"develop: {what} exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    sys.exit(f"develop: {what} did not open port {port} within {timeout:.0f} s")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_simulator(port: int, args: list[str], quiet: bool) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "custom_components.hanport.han",
        "simulate",
        "--tcp",
        f"127.0.0.1:{port}",
        *args,
    ]
    log(f"simulator: {shlex.join(command[1:])}")
    output = (DEV / "simulator.log").open("wb") if quiet else None
    process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)
    wait_port(port, process, "the simulator", 30)
    return process


HASS = """\
import sys
sys.path.append({pydeps!r})  # after site-packages: never shadows the venv's own packages
from homeassistant.__main__ import main
sys.exit(main())
"""


def start_hass(http_port: int, quiet: bool) -> subprocess.Popen[bytes]:
    """Run ``hass -c CONFIG --skip-pip`` with .develop/pydeps appended to sys.path."""
    arguments = ["-c", str(CONFIG), "--skip-pip"]
    log(f"home assistant: hass {shlex.join(arguments)} (first start takes a minute)")
    output = (DEV / "hass.log").open("wb") if quiet else None
    process = subprocess.Popen(
        [sys.executable, "-c", HASS.format(pydeps=str(PYDEPS)), *arguments],
        cwd=ROOT,
        stdout=output,
        stderr=output,
    )
    wait_port(http_port, process, "Home Assistant", 300)
    return process


def stop(process: subprocess.Popen[bytes] | None, what: str) -> None:
    if process is None or process.poll() is not None:
        return
    log(f"stopping {what}")
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- HTTP ----------------------------------------------------------------------------


class Api:
    """The few REST calls the setup needs (stdlib only: the script runs anywhere)."""

    def __init__(self, http_port: int) -> None:
        self.base = f"http://127.0.0.1:{http_port}"
        self.client_id = f"{self.base}/"
        self.token = ""

    def call(
        self, method: str, path: str, body: Any = None, *, form: dict[str, str] | None = None
    ) -> Any:
        raw = self.text(method, path, body, form=form)
        return json.loads(raw) if raw else None

    def text(
        self, method: str, path: str, body: Any = None, *, form: dict[str, str] | None = None
    ) -> str:
        headers = {}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", "/api/")
            except urllib.error.HTTPError:
                return  # 401: the API is up (and wants a token)
            except urllib.error.URLError, ConnectionError, TimeoutError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
            else:
                return

    def _token_from_code(self, code: str) -> None:
        tokens = self.call(
            "POST",
            "/auth/token",
            form={"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
        )
        self.token = tokens["access_token"]

    def sign_in(self) -> None:
        """Onboard (owner dev/dev) on the first start, log in on later ones."""
        try:
            steps = {step["step"]: step["done"] for step in self.call("GET", "/api/onboarding")}
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
            steps = {}  # onboarding finished earlier: its API is gone
        if not steps.get("user", True):
            log(f"onboarding: creating the owner {USER!r}")
            result = self.call(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": "Developer",
                    "username": USER,
                    "password": PASSWORD,
                    "language": "en",
                },
            )
            self._token_from_code(result["auth_code"])
        else:
            flow = self.call(
                "POST",
                "/auth/login_flow",
                {
                    "client_id": self.client_id,
                    "handler": ["homeassistant", None],
                    "redirect_uri": self.client_id,
                },
            )
            result = self.call(
                "POST",
                f"/auth/login_flow/{flow['flow_id']}",
                {"client_id": self.client_id, "username": USER, "password": PASSWORD},
            )
            self._token_from_code(result["result"])
        if not steps.get("core_config", True):
            self.call("POST", "/api/onboarding/core_config")
            self._remove_onboarding_extras()
        if not steps.get("analytics", True):
            self.call("POST", "/api/onboarding/analytics")
        if not steps.get("integration", True):
            self.call(
                "POST",
                "/api/onboarding/integration",
                {"client_id": self.client_id, "redirect_uri": self.client_id},
            )

    def _remove_onboarding_extras(self) -> None:
        """Drop the weather/radio/TTS/list entries onboarding adds (they need the internet).

        Onboarding starts their flows in the background; give them a few seconds.
        """
        extras = {"google_translate", "met", "radio_browser", "shopping_list"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for entry in self.call("GET", "/api/config/config_entries/entry"):
                if entry["domain"] in extras:
                    log(f"removing the onboarding default {entry['domain']}")
                    self.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
            time.sleep(1)

    def ensure_entry(self, sim_port: int, sim: str, keys: dict[str, str]) -> None:
        """Create the hanport entry through the config flow, as the UI does.

        The REST API does not show entry data, so what the entry was made for (port and
        simulated meter) is kept in .develop/entry_for; an entry made for another
        simulator setup is replaced.
        """
        url = f"socket://127.0.0.1:{sim_port}"
        made_for = DEV / "entry_for"
        wanted = f"{url} {sim}".strip()
        for entry in self.call("GET", "/api/config/config_entries/entry?domain=hanport"):
            if entry.get("source") == "ignore":
                continue
            if made_for.exists() and made_for.read_text() == wanted:
                log(f"hanport entry exists: {entry['title']}")
                return
            log(f"removing {entry['title']}: it was made for another simulator setup")
            self.call("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
        log(f"config flow: menu -> network -> 127.0.0.1:{sim_port}")
        result = self.call("POST", "/api/config/config_entries/flow", {"handler": "hanport"})
        flow = f"/api/config/config_entries/flow/{result['flow_id']}"
        result = self.call("POST", flow, {"next_step_id": "network"})
        result = self.call("POST", flow, {"host": "127.0.0.1", "port": sim_port})
        deadline = time.monotonic() + 150
        while result["type"] in ("progress", "progress_done") or (
            result.get("step_id") == "keys" and keys
        ):
            if time.monotonic() > deadline:
                sys.exit("develop: the config flow kept listening for 150 s")
            if result["type"] == "form":  # an encrypted meter: the simulator's keys
                log("config flow: the meter encrypts; entering the simulator's keys")
                result = self.call("POST", flow, keys)
                keys = {}
                continue
            log("config flow: listening to the meter ...")
            time.sleep(2)
            result = self.call("GET", flow)
        if result["type"] != "create_entry":
            sys.exit(f"develop: the config flow ended with {json.dumps(result)}")
        made_for.write_text(wanted)
        log(f"config flow: created {result['title']!r}")

    def hanport_states(self) -> list[dict[str, Any]]:
        """States of every hanport entity (the template API knows which they are)."""
        template = "{{ integration_entities('hanport') | list | tojson }}"
        entity_ids = json.loads(self.text("POST", "/api/template", {"template": template}))
        return [self.call("GET", f"/api/states/{entity_id}") for entity_id in entity_ids]


def check(api: Api, timeout: float) -> bool:
    """Wait until a power sensor has shown three different live values."""
    deadline = time.monotonic() + timeout
    seen: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        states = api.hanport_states()
        for state in states:
            seen.setdefault(state["entity_id"], [])
            if not seen[state["entity_id"]] or seen[state["entity_id"]][-1] != state["state"]:
                seen[state["entity_id"]].append(state["state"])
        power = [
            s
            for s in states
            if s["attributes"].get("device_class") == "power"
            and s["attributes"].get("unit_of_measurement") == "W"
            and s["state"] not in ("unknown", "unavailable")
        ]
        if power and any(len(seen[s["entity_id"]]) >= 3 for s in power):
            log(f"{len(states)} hanport entities; live values:")
            for state in sorted(states, key=lambda s: s["entity_id"]):
                unit = state["attributes"].get("unit_of_measurement", "")
                log(f"  {state['entity_id']:55s} {state['state']:>14s} {unit}")
            return True
        time.sleep(2)
    log("no live hanport values in time; states seen: " + json.dumps(seen))
    return False


def sim_keys(sim_args: list[str]) -> dict[str, str]:
    """The keys an encrypted simulated meter was given (--key/--auth-key), for the flow."""
    keys = {}
    for flag, field in (("--key", "key"), ("--auth-key", "auth_key")):
        if flag in sim_args[:-1]:
            keys[field] = sim_args[sim_args.index(flag) + 1]
    return keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8123)
    parser.add_argument("--sim-port", type=int, default=18899)
    parser.add_argument(
        "--sim",
        default="",
        help='extra simulator arguments, e.g. --sim "--vendor kaifa --country SE"',
    )
    parser.add_argument("--fresh", action="store_true", help="start from an empty config dir")
    parser.add_argument(
        "--check",
        action="store_true",
        help="wait for live hanport values, print them, stop (exit 1 if none in --timeout)",
    )
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    for port, what in ((args.http_port, "HTTP"), (args.sim_port, "simulator")):
        if not port_free(port):
            sys.exit(f"develop: the {what} port {port} is in use")
    DEV.mkdir(exist_ok=True)
    ensure_requirements()
    ensure_config(args.http_port, args.fresh)

    simulator = hass = None

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        simulator = start_simulator(args.sim_port, shlex.split(args.sim), quiet=args.check)
        hass = start_hass(args.http_port, quiet=args.check)
        api = Api(args.http_port)
        api.wait_ready()
        api.sign_in()
        api.ensure_entry(args.sim_port, args.sim, sim_keys(shlex.split(args.sim)))
        if args.check:
            return 0 if check(api, args.timeout) else 1
        log(f"ready: http://localhost:{args.http_port}  (user {USER!r}, password {PASSWORD!r})")
        log("Ctrl-C stops Home Assistant and the simulator")
        hass.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        with suppress(KeyboardInterrupt):
            stop(hass, "Home Assistant")
            stop(simulator, "the simulator")
    return hass.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
