"""A real browser: JupyterLab on 127.0.0.1 in headless Chromium; Save and Stop while training runs.

Needs the Debian ``chromium`` binary and the ``playwright`` Python package (its own browser
download is never used). The screenshot is kept under ``artifacts/``.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import trialbench
from conftest import ROOT

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = os.path.join(ROOT, 'artifacts')
CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync']

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f'no Chromium at {CHROMIUM}'),
]

NOTEBOOK_SETUP = f'''
import json, sys, time
sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
from conftest import guide_data, guide_trial
from trialbench.callbacks.base import Callback

class Slow(Callback):
    """Makes each step take a little while, so a person (or a test) can click."""
    def on_step_training(self, state):
        time.sleep(0.01)

trial = guide_trial(callbacks=[Slow()]).with_train_generator(guide_data(n=150, batch_size=1))
trial.verbose = 1
'''
NOTEBOOK_WAIT = '''
await trial.wait_async()
json.dump({"ledger": trial.ledger, "epochs": trial.epochs_done}, open("result.json", "w"))
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f'timed out after {timeout} s waiting for {what}')


class Lab:
    """JupyterLab on 127.0.0.1 with a known token and private settings, stopped by its PID."""

    def __init__(self, base):
        self.base, self.root = base, base / 'root'
        self.root.mkdir()
        self.token = secrets.token_hex(16)
        self.url = f'http://127.0.0.1:{free_port()}'
        settings = base / 'settings' / '@jupyterlab' / 'apputils-extension'
        settings.mkdir(parents=True)
        (settings / 'notification.jupyterlab-settings').write_text(
            json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
        self.proc = None

    def api(self, path, method='GET'):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
            return json.loads(body) if body else None

    def start(self):
        port = self.url.rsplit(':', 1)[1]
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.base / 'cfg'),
                   JUPYTER_RUNTIME_DIR=str(self.base / 'runtime'),
                   IPYTHONDIR=str(self.base / 'ipython'), MPLBACKEND='Agg')
        cmd = [os.path.join(os.path.dirname(sys.executable), 'jupyter-lab'), '--no-browser',
               '--allow-root', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
               '--ServerApp.port_retries=0', f'--IdentityProvider.token={self.token}',
               f'--ServerApp.root_dir={self.root}',
               f'--LabApp.user_settings_dir={self.base / "settings"}',
               f'--LabApp.workspaces_dir={self.base / "workspaces"}', '--LabApp.news_url=None',
               '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
        self.log = open(self.base / 'jupyterlab.log', 'w')
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        wait_for(lambda: self.proc.poll() is None and self.api('/api/status'), 120,
                 'JupyterLab to answer')

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.api('/api/shutdown', method='POST')
                self.proc.wait(15)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def lab(tmp_path):
    server = Lab(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_save_and_stop_answer_while_training_runs(lab, tmp_path):
    nbformat = pytest.importorskip('nbformat')
    playwright = pytest.importorskip('playwright.sync_api')
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_SETUP),
                nbformat.v4.new_code_cell('trial.start(20)'),
                nbformat.v4.new_code_cell(NOTEBOOK_WAIT)]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3',
                                 'language': 'python'}
    nbformat.write(nb, lab.root / 'train.ipynb')
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, 'dashboard-browser.png')

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / 'chromium-profile'), executable_path=CHROMIUM,
            headless=True, args=CHROME_ARGS)
        page = browser.new_page()
        page.set_viewport_size({'width': 1200, 'height': 1100})
        try:
            page.goto(f'{lab.url}/lab/tree/train.ipynb?reset&token={lab.token}',
                      wait_until='domcontentloaded')
            playwright.expect(page.locator('.jp-NotebookPanel .jp-Notebook')).to_be_visible(
                timeout=90_000)
            wait_for(lambda: [s for s in lab.api('/api/sessions')
                              if s['kernel']['execution_state'] == 'idle'], 90, 'an idle kernel')
            page.locator('.lm-MenuBar-item', has_text=re.compile(r'^Run$')).click()
            page.get_by_role('menuitem', name='Run All Cells', exact=True).click()

            status = page.locator('.tb-status').first
            progress = page.locator('.tb-progress').first
            playwright.expect(page.locator('button.tb-save')).to_be_visible(timeout=120_000)
            wait_for(lambda: re.search(r'epoch 2 of 20 · batch (\d+)/150',
                                       progress.inner_text()), 120, 'training in epoch 2')
            playwright.expect(page.locator('button.tb-resume')).to_be_disabled()

            page.locator('button.tb-save').click()
            wait_for(lambda: 'saved checkpoints/BasicModel.pt' in status.inner_text(), 30,
                     'the save to be written')
            page.locator('button.tb-stop').click()
            wait_for(lambda: 'stopped after' in status.inner_text(), 30, 'the run to stop')
            final = status.inner_text()
            playwright.expect(page.locator('button.tb-stop')).to_be_disabled()
            playwright.expect(page.locator('img.tb-plot')).to_be_visible()
            wait_for((lab.root / 'result.json').exists, 30, 'the waiting cell to finish')
            page.locator('.tb-dashboard').first.evaluate(
                "el => el.closest('.jp-Cell').scrollIntoView({block: 'start'})")
            time.sleep(0.5)
            page.screenshot(path=shot)
        except Exception:
            page.screenshot(path=os.path.join(ARTIFACTS, 'dashboard-browser-failed.png'))
            raise
        finally:
            browser.close()

    assert re.match(r'stopped after \d+ of 20 epochs', final)
    result = json.loads((lab.root / 'result.json').read_text())
    assert 1 <= result['epochs'] < 20
    assert result['ledger'][-1]['ended'] == 'stopped'
    ckpt = trialbench.load_checkpoint(lab.root / 'checkpoints' / 'BasicModel.pt')
    assert ckpt['kind'] == 'trial'
    mid = ckpt['progress']['mid_epoch']
    assert mid is not None and mid['epoch'] >= 2 and 0 < mid['batch'] < 150
    assert os.path.getsize(shot) > 10_000
