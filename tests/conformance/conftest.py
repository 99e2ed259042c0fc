"""Starts a real `trworker engine` for the suite and hands tests a twilio.rest.Client pointed at it.

The binary is taken from $TRWORKER_BIN, else target/debug/trworker (build it first: `cargo build`). The engine
runs with a manual clock so reservation timeouts are tested by moving time, never by sleeping.
"""

import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time
from urllib.parse import parse_qsl

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

import spec_check

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read_env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


class RecordingHttpClient(TwilioHttpClient):
    """The library's own HTTP client, recording every response for the spec check."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        response = super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                                   timeout=timeout, allow_redirects=allow_redirects)
        self.log.append((method.upper(), url, response.status_code, response.text))
        return response


class CallbackReceiver:
    """A tiny HTTP server that records the engine's signed event callbacks."""

    def __init__(self):
        received = self.received = []
        cond = self.cond = threading.Condition()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                with cond:
                    received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, parse_qsl(body, keep_blank_values=True)))
                    cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout=20):
        """Waits until a received callback matches; delivery is asynchronous by design."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.received:
                    if predicate(dict(item[2])):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)


@pytest.fixture(scope="session")
def engine():
    binary = os.environ.get("TRWORKER_BIN", os.path.join(ROOT, "target", "debug", "trworker"))
    if not os.path.exists(binary):
        pytest.fail(f"{binary} not found: run `cargo build` first or set TRWORKER_BIN")
    data_dir = tempfile.mkdtemp(prefix="trworker-conformance-")
    env = {k: v for k, v in os.environ.items() if k not in ("ACCOUNT_SID", "AUTH_TOKEN", "WORKSPACE_SID", "PORT")}
    proc = subprocess.Popen(
        [binary, "engine", "--port", "0", "--data-dir", data_dir, "--seed", "none", "--manual-clock"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    env_file = os.path.join(data_dir, "local.env")
    deadline = time.monotonic() + 60
    while not os.path.exists(env_file):
        if proc.poll() is not None:
            pytest.fail("trworker engine exited early:\n" + proc.stdout.read())
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("trworker engine did not write local.env within 60 s")
        time.sleep(0.05)
    time.sleep(0.05)  # the file is written in one go after binding; this only guards a partial read
    values = read_env_file(env_file)
    yield values
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def recorded():
    return []


@pytest.fixture(scope="session")
def client(engine, recorded):
    c = Client(engine["ACCOUNT_SID"], engine["AUTH_TOKEN"], http_client=RecordingHttpClient(recorded))
    c.taskrouter.base_url = engine["TWILIO_TASKROUTER_URL"]
    c.api.base_url = engine["TWILIO_API_URL"]
    return c


@pytest.fixture(scope="session")
def receiver():
    r = CallbackReceiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="session")
def advance_clock(engine):
    """Moves the engine's manual clock forward and fires due timers."""
    import requests

    def advance(seconds):
        r = requests.post(
            engine["TWILIO_TASKROUTER_URL"].rstrip("/") + "/trworker/v1/Clock",
            data={"AdvanceSeconds": str(seconds)},
            auth=(engine["ACCOUNT_SID"], engine["AUTH_TOKEN"]),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return r.json()

    return advance
