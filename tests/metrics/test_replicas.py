"""Two replicas split the generated images, real images and PPL samples between them and give the
one-replica results."""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_two_replicas_give_the_one_replica_results():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, os.path.join(HERE, "replicas_check.py")], capture_output=True, text=True,
                       timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(d != "shape" and d <= 1e-6 for d in result["diff"].values()), result["diff"]
    one, two = result["records"]
    assert [r["num_gpus"] for r in one] == [1] * 2 and [r["num_gpus"] for r in two] == [2] * 2
    for a, b in zip(one, two):
        assert a["results"].keys() == b["results"].keys()
        for key in a["results"]:
            assert abs(a["results"][key] - b["results"][key]) <= 1e-6 * max(1.0, abs(a["results"][key])), (key, a, b)
