#!/usr/bin/env python3
"""The launcher's contract (scripts/stack.py, which scripts/dev runs): exactly one line on stdout,
`ready: http://127.0.0.1:<port>`, once every endpoint answers; SIGTERM and SIGINT stop every
process it started. Runs a second stack on its own ports and run directory, so it can run beside
the test stack. Run by scripts/test, after the cargo tests (it needs the build lock).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".local", "venv", "bin", "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


class LauncherTest(unittest.TestCase):
    def run_stack_and_stop_with(self, signum: int) -> None:
        ports = {name: free_port() for name in ("API", "DYNAMODB", "MOTO", "HERSYS", "DEVICECHECK")}
        env = {**os.environ, **{f"COCOA_{name}_PORT": str(port) for name, port in ports.items()}}
        with tempfile.TemporaryDirectory() as run_dir:
            env["COCOA_RUN_DIR"] = run_dir
            errors = open(os.path.join(run_dir, "stack.err"), "w+")
            stack = subprocess.Popen([PYTHON, os.path.join(ROOT, "scripts", "stack.py")], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=errors, text=True)
            try:
                line = stack.stdout.readline()
                errors.seek(0)
                self.assertEqual(line, f"ready: http://127.0.0.1:{ports['API']}\n", errors.read())
                request = urllib.request.Request(f"http://127.0.0.1:{ports['API']}/api/register", data=b"", method="POST")
                with urllib.request.urlopen(request, timeout=30) as response:
                    self.assertEqual(response.status, 200)
                stack.send_signal(signum)
                rest = stack.communicate(timeout=30)[0]
            finally:
                if stack.poll() is None:
                    stack.kill()
                stack.stdout.close()
                errors.close()
            self.assertEqual(stack.returncode, 0)
            self.assertEqual(rest, "", "nothing but the ready line on stdout")
            deadline = time.time() + 10
            while time.time() < deadline and any(port_in_use(p) for p in ports.values()):
                time.sleep(0.2)
            self.assertEqual([n for n, p in ports.items() if port_in_use(p)], [], "every service stopped")
            leftovers = processes_mentioning(run_dir)
            self.assertEqual(leftovers, [], "no process of this stack is left")

    def test_sigterm_stops_everything(self):
        self.run_stack_and_stop_with(signal.SIGTERM)

    def test_sigint_stops_everything(self):
        self.run_stack_and_stop_with(signal.SIGINT)


if __name__ == "__main__":
    sys.exit(unittest.main())
