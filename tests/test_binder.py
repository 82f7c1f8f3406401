"""Binder's configuration and the command that opens JupyterLab on the quickstart notebook.

repo2docker renders the Dockerfile it would build (``--no-build``, no docker needed); the
postBuild script and ``scripts/lab.sh`` are run for real, with a JupyterLab server on
127.0.0.1 that the test starts and stops by its process id.
"""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT

BINDER = os.path.join(ROOT, 'binder')
BIN = os.path.dirname(sys.executable)
QUICKSTART = '/lab/tree/notebooks/quickstart.ipynb'
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPHandler)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


def read_lines(name):
    with open(os.path.join(BINDER, name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def get(url, opener=OPENER, method='GET', token=None):
    """(status, headers) of a request; HTTP errors are answers too."""
    request = urllib.request.Request(url, method=method, data=b'' if method == 'POST' else None)
    if token:
        request.add_header('Authorization', f'token {token}')
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


class Server:
    """A JupyterLab process in its own process group, stopped by /api/shutdown, then by PID."""

    def __init__(self, argv, env, log):
        self.log = open(log, 'w+')
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, url, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f'the server exited:\n{self.output()}'
            try:
                status, _ = get(url)
            except OSError:
                status = None
            if status == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f'{url} did not answer within {timeout} s:\n{self.output()}')

    def stop(self, base, token):
        if self.proc.poll() is None:
            try:
                get(f'{base}/api/shutdown', method='POST', token=token)
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
        self.log.close()


def server_env(tmp_path, home=None):
    env = {**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp_path / 'runtime'),
           'JUPYTER_PLATFORM_DIRS': '1', 'PATH': BIN + os.pathsep + os.environ['PATH']}
    if home is not None:
        env['HOME'] = str(home)
        env.pop('JUPYTER_CONFIG_DIR', None)
    return env


def check_lab_opens_quickstart(base, token):
    """``/`` leads to the quickstart page, which Lab serves; the notebook is in its contents."""
    status, headers = get(f'{base}/?token={token}', opener=NO_REDIRECT)
    assert status == 302 and headers['Location'].split('?')[0].endswith(QUICKSTART)
    assert get(f'{base}{QUICKSTART}?token={token}')[0] == 200
    status, _ = get(f'{base}/api/contents/notebooks/quickstart.ipynb?content=0', token=token)
    assert status == 200


# ---------------------------------------------------------------------------- binder/
def test_requirements_install_the_project_and_cpu_torch():
    lines = read_lines('requirements.txt')
    assert '.' in lines
    assert '--extra-index-url https://download.pytorch.org/whl/cpu' in lines
    assert 'torch==2.13.0' in lines
    assert read_lines('runtime.txt') == ['python-3.11']


def test_postbuild_is_an_executable_bash_script():
    path = os.path.join(BINDER, 'postBuild')
    assert os.stat(path).st_mode & stat.S_IXUSR
    tracked = subprocess.run(['git', 'ls-files', '-s', 'binder/postBuild'], cwd=ROOT,
                             capture_output=True, text=True).stdout
    assert tracked.startswith('100755'), 'git must record postBuild as executable'
    assert subprocess.run(['bash', '-n', path]).returncode == 0


def test_repo2docker_renders_the_binder_setup(tmp_path):
    exe = os.path.join(BIN, 'jupyter-repo2docker')
    proc = subprocess.run([exe, '--no-build', '--no-run', '--debug', ROOT],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert 'Building conda environment for python=3.11' in out
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in out
    assert './binder/postBuild' in out
    # binder/ wins over the root: pyproject.toml alone must not decide the environment
    assert not re.search(r'pip install[^\n]*--no-cache-dir \.(\s|$)', out)


@pytest.mark.slow
def test_postbuild_makes_lab_open_on_the_quickstart(tmp_path):
    home = tmp_path / 'home'
    home.mkdir()
    env = server_env(tmp_path, home)
    proc = subprocess.run([os.path.join(BINDER, 'postBuild')], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config_dir = subprocess.run(['jupyter', '--config-dir'], env=env, capture_output=True,
                                text=True).stdout.strip()
    assert config_dir.startswith(str(home))
    assert os.path.exists(os.path.join(config_dir, 'jupyter_server_config.py'))

    port, token = free_port(), 'binder-test-token'
    base = f'http://127.0.0.1:{port}'
    argv = [os.path.join(BIN, 'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1',
            f'--port={port}', '--ServerApp.port_retries=0',
            f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={ROOT}']
    if os.getuid() == 0:
        argv.append('--allow-root')
    server = Server(argv, env, tmp_path / 'lab.log')
    try:
        server.wait_for(f'{base}/api/status?token={token}')
        check_lab_opens_quickstart(base, token)
    finally:
        server.stop(base, token)


# ------------------------------------------------------------------- scripts/lab.sh
@pytest.mark.slow
def test_lab_script_serves_the_quickstart_on_localhost(tmp_path):
    port = free_port()
    server = Server([os.path.join(ROOT, 'scripts', 'lab.sh'), '--no-setup', '--port',
                     str(port), '--no-browser'], server_env(tmp_path), tmp_path / 'lab.log')
    base = f'http://127.0.0.1:{port}'
    token = None
    try:
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            found = re.search(rf'{re.escape(base + QUICKSTART)}\?token=(\w+)', server.output())
            token = found and found.group(1)
            time.sleep(0.2)
        assert token, f'lab.sh printed no URL:\n{server.output()}'
        server.wait_for(f'{base}{QUICKSTART}?token={token}')
        check_lab_opens_quickstart(base, token)
        # it listens on 127.0.0.1 only, and a wrong token is refused
        servers = [json.loads(f.read_text()) for f in (tmp_path / 'runtime').glob('jpserver-*.json')]
        assert [s['hostname'] for s in servers] == ['127.0.0.1']
        assert get(f'{base}/api/contents?token=wrong')[0] == 403
    finally:
        server.stop(base, token)
