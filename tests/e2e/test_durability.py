# SPDX-License-Identifier: Apache-2.0
"""kill -9 during `meshctl apply`: an apply is one transaction, so after any crash each file is
either entirely stored or not at all, an apply that reported success is entirely stored, and
the store still opens."""
import json
import os
import random
import signal
import subprocess
import time

from conftest import base_env, check_sanitizer_output

DOCS_PER_FILE = 150
ROUNDS = 40
TIME_BUDGET = 25.0  # seconds for the whole loop; rounds stop early rather than run long
SEED = int(os.environ.get("MESH_DURABILITY_SEED", "0")) or random.randrange(1, 1 << 30)


def write_round_file(path, ns):
    docs = []
    for i in range(DOCS_PER_FILE):
        docs.append(
            "apiVersion: mesh.clusterdb.io/v1\n"
            "kind: Service\n"
            "metadata:\n"
            f"  name: svc-{i}\n"
            f"  namespace: {ns}\n"
            "spec:\n"
            "  protocol: http\n"
            "  endpoints:\n"
            f"    - 127.0.0.1:{20000 + i}\n"
        )
    path.write_text("---\n".join(docs))


def start_apply(mesh, path):
    return subprocess.Popen(
        [str(mesh.meshctl), "--store", str(mesh.store), "apply", "-f", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(),
    )


def test_kill_9_during_apply_is_all_or_nothing(mesh, tmp_path):
    rng = random.Random(SEED)
    print(f"seed {SEED} (set MESH_DURABILITY_SEED to replay)")

    # How long one whole apply takes here, so that kills land before, during and after the
    # transaction whatever the machine (a sanitizer build is several times slower).
    write_round_file(tmp_path / "baseline.yaml", "baseline")
    t0 = time.monotonic()
    mesh.ok("apply", "-f", tmp_path / "baseline.yaml")
    baseline = time.monotonic() - t0
    max_sleep = min(max(baseline * 1.2, 0.005), 0.5)

    completed, killed = [], []
    deadline = time.monotonic() + TIME_BUDGET
    for r in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        ns = f"round-{r}"
        path = tmp_path / f"{ns}.yaml"
        write_round_file(path, ns)
        proc = start_apply(mesh, path)
        # every fifth round runs to the end, so that applies after kills are proven to work
        if r % 5 != 4:
            time.sleep(rng.uniform(0, max_sleep))
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        if proc.returncode == 0:
            check_sanitizer_output(err, ["apply", "-f", str(path)])
            assert out.splitlines() == [f"service/svc-{i} created" for i in range(DOCS_PER_FILE)]
            completed.append(ns)
        else:
            assert proc.returncode == -signal.SIGKILL, (
                f"round {r}: apply failed on its own (rc {proc.returncode}):\n{err}"
            )
            killed.append(ns)

    assert killed, "no apply was killed: the test proved nothing"
    assert any(int(ns.split("-")[1]) % 5 == 4 for ns in completed)

    stored = mesh.get_json("svc", "-A")
    count = {}
    for doc in stored:
        ns = doc["metadata"]["namespace"]
        count[ns] = count.get(ns, 0) + 1
    for ns in completed:
        assert count.get(ns) == DOCS_PER_FILE, f"{ns} reported success but has {count.get(ns)}"
    for ns in killed:
        assert count.get(ns, 0) in (0, DOCS_PER_FILE), (
            f"{ns} was killed and is partially stored: {count.get(ns)} of {DOCS_PER_FILE}"
        )
    assert set(count) <= set(completed) | set(killed) | {"baseline"}
    print(
        f"baseline apply {baseline * 1000:.1f} ms; {len(completed)} completed, "
        f"{len(killed)} killed, of which "
        f"{sum(1 for ns in killed if count.get(ns))} had committed"
    )

    # the store still opens and reads whole
    everything = json.loads(mesh.ok("get", "all", "-A", "-o", "json"))
    assert len(everything) == len(stored)
    mesh.ok("get", "all", "-A")
