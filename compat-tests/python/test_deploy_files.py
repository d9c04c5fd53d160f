"""The deployment files in docker/ are right, checked without a cluster or a Docker daemon.

What Compose's own `docker-compose config` (run by .ci/run) and Kubernetes' schemas cannot
see is checked against wharf itself:
  - every variable the files set is one wharf reads: it is in README's configuration
    table AND a string literal in src/ (a misspelt name is not an error to wharf: it is
    silently ignored, so this is the only place it is caught);
  - cluster workers are really one cluster: unique worker ids, one shared cluster secret,
    API key, MongoDB URL and namespace; each advertises an address that reaches itself;
  - probes and healthchecks hit what the binary serves (/ping, /health in the OpenAPI
    document, `wharf healthcheck` at the path the Dockerfile installs it);
  - the pods run as the image's user (docker/Dockerfile's uid) and every folder wharf
    writes is a volume when the root filesystem is read-only.

The Kubernetes manifests are built the way `kubectl kustomize` would (resources,
secretGenerator with merge, images) by a small builder below, from
docker/k8s/base/secret.env.example, and validated against the Kubernetes API schemas
(`kubernetes-validate`, strict: unknown fields are errors). When `kubectl` is on PATH, its
own kustomize build must produce the same objects.

Last, one real wharf worker (the MongoDB pass only: cluster mode needs it) starts with
each layout's worker environment as written, only the container paths, the secrets and
the MongoDB URL replaced: the values parse, it joins as a cluster worker under the
configured id, and the image's healthcheck command passes against it. The other tests
need no binary.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import WHARF_BIN

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"
COMPOSE_CLUSTER = DOCKER / "compose.cluster.yaml"
WORKER_PREFIX = "wharf-"
# The Kubernetes API version the manifests are validated against (a recent one; the
# manifests use only GA kinds: apps/v1, v1, policy/v1, batch/v1).
K8S_VERSION = "1.33"


# --------------------------------------------------------------------------- wharf facts


def readme_variables() -> set[str]:
    """Every variable named in the first column of README's configuration table."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


def source_literals() -> set[str]:
    """Every `"UPPER_CASE"` string literal in wharf's sources (the config parser's names)."""
    names: set[str] = set()
    for path in (REPO / "src").rglob("*.rs"):
        names.update(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', path.read_text()))
    return names


KNOWN = readme_variables() & source_literals()


def dockerfile() -> dict[str, Any]:
    text = (DOCKER / "Dockerfile").read_text()
    uid = re.search(r"useradd\b[^\n]*--uid (\d+)[^\n]* (\w+)\s*\\?\n", text)
    assert uid, "docker/Dockerfile creates its user with useradd --uid"
    user = re.findall(r"^USER (\S+)", text, re.M)
    binary = re.search(r"^COPY --from=build \S+ (\S+)$", text, re.M)
    expose = re.findall(r"^EXPOSE (\d+)", text, re.M)
    return {
        "uid": int(uid.group(1)),
        "user_name": uid.group(2),
        "user": user[-1] if user else None,
        "binary": binary.group(1) if binary else None,
        "port": int(expose[-1]) if expose else None,
    }


def served_paths() -> set[str]:
    spec = json.loads((REPO / "openapi" / "openapi.json").read_text())
    return set(spec["paths"])


def unknown_variables(env: dict[str, Any]) -> list[str]:
    """Names in `env` wharf does not read, except helpers other values refer to as $(NAME)
    (Kubernetes' dependent variables, e.g. POD_IP)."""
    referenced = {
        ref for value in env.values() if isinstance(value, str) for ref in re.findall(r"\$\((\w+)\)", value)
    }
    return sorted(name for name in env if name not in KNOWN and name not in referenced)


def healthcheck_command(df: dict[str, Any]) -> list[str]:
    return [df["binary"], "healthcheck"]


# --------------------------------------------------------------------------- compose


def load_compose() -> dict[str, Any]:
    # PyYAML's safe loader resolves the `<<: *anchor` merges as Compose does.
    return yaml.safe_load(COMPOSE_CLUSTER.read_text())


def compose_workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if (svc.get("environment") or {}).get("WHARF_CLUSTER") == "true"
    }


def test_every_yaml_file_in_docker_parses():
    files = sorted(DOCKER.rglob("*.yaml"))
    assert len(files) >= 10, files
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path} is empty"


def test_known_variables_are_read_from_wharf_itself():
    # The oracle: the table and the parser agree on the names the files use.
    for name in ["WHARF_CLUSTER_SECRET", "WAHA_WORKER_ID", "WHARF_ADVERTISE_URL", "WHATSAPP_SESSIONS_MONGO_URL"]:
        assert name in KNOWN, name
    assert "WHARF_CLUSTER_SECERT" not in KNOWN


def test_compose_has_three_workers_with_unique_ids_and_one_secret():
    compose = load_compose()
    workers = compose_workers(compose)
    assert len(workers) == 3, sorted(workers)
    ids = [svc["environment"]["WAHA_WORKER_ID"] for svc in workers.values()]
    assert len(set(ids)) == 3 and all(ids), ids
    # One cluster: the same secret, API key, MongoDB and namespaces on every worker.
    for shared in [
        "WHARF_CLUSTER_SECRET",
        "WAHA_API_KEY",
        "WHATSAPP_SESSIONS_MONGO_URL",
        "WAHA_NAMESPACE",
        "WAHA_SESSION_NAMESPACE",
        "WHARF_CLUSTER_LEASE_SECONDS",
        "WHARF_CLUSTER_DEAD_SECONDS",
    ]:
        values = {svc["environment"].get(shared) for svc in workers.values()}
        assert len(values) == 1, f"{shared} differs between workers: {values}"
    secret = next(iter(workers.values()))["environment"]["WHARF_CLUSTER_SECRET"]
    # Never a literal in the file: required from the environment (Compose fails without it).
    assert re.fullmatch(r"\$\{WHARF_CLUSTER_SECRET:\?[^}]+\}", secret), secret
    key = next(iter(workers.values()))["environment"]["WAHA_API_KEY"]
    assert re.fullmatch(r"\$\{WAHA_API_KEY:\?[^}]+\}", key), key
    mongo = compose["services"]["mongo"]
    assert "--replSet" in mongo["command"], "MongoDB runs as a replica set"
    assert "replicaSet=rs0" in next(iter(workers.values()))["environment"]["WHATSAPP_SESSIONS_MONGO_URL"]


def test_compose_sets_only_variables_wharf_reads():
    for name, svc in compose_workers(load_compose()).items():
        assert unknown_variables(svc["environment"]) == [], name


def test_variable_check_catches_a_misspelt_name():
    compose = load_compose()
    env = dict(next(iter(compose_workers(compose).values()))["environment"])
    env["WHARF_CLUSTER_SECERT"] = env.pop("WHARF_CLUSTER_SECRET")
    assert unknown_variables(env) == ["WHARF_CLUSTER_SECERT"]
    deployment = copy.deepcopy(find(build_k8s(K8S), "Deployment", "wharf"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"][1]["name"] = "WAHA_WORKER_IDD"
    assert unknown_variables(k8s_env(container)) == ["WAHA_WORKER_IDD"]


def test_compose_workers_advertise_their_own_service_and_port():
    df = dockerfile()
    workers = compose_workers(load_compose())
    for name, svc in workers.items():
        env = svc["environment"]
        port = int(env.get("PORT", env.get("WHATSAPP_API_PORT", 3000)))
        assert port == df["port"], f"{name} listens on the image's port"
        url = env["WHARF_ADVERTISE_URL"]
        m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
        assert m, url
        # The service name is the host other containers resolve it by.
        assert m.group(1) == name, f"{name} advertises {url}"
        assert int(m.group(2)) == port, url
        # Distinct ids that also say which container it is in logs and leases.
        assert env["WAHA_WORKER_ID"] == name


def test_compose_healthchecks_and_load_balancer():
    df = dockerfile()
    compose = load_compose()
    workers = compose_workers(compose)
    for name, svc in workers.items():
        assert svc["healthcheck"]["test"] == ["CMD", *healthcheck_command(df)], name
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy", name
        # SIGTERM drains (hands sessions over); Compose's default 10 s may cut it short.
        grace = svc.get("stop_grace_period", "10s")
        assert int(grace.rstrip("s")) >= 30, f"{name}: stop_grace_period {grace}"
        assert "wharf" in svc["networks"]["default"]["aliases"], name
    lb = compose["services"]["lb"]
    assert set(lb["depends_on"]) == set(workers)
    assert all(d["condition"] == "service_healthy" for d in lb["depends_on"].values())
    (mount,) = lb["volumes"]
    conf_file, target = mount.split(":")[:2]
    assert target == "/etc/nginx/nginx.conf"
    conf = (DOCKER / conf_file).read_text()
    # nginx proxies to the alias every worker carries, on the workers' port, with the
    # upgrade headers /ws needs.
    upstream = re.search(r"set \$wharf http://([a-z0-9-]+):(\d+);", conf)
    assert upstream and upstream.group(1) == "wharf" and int(upstream.group(2)) == df["port"], conf
    assert "proxy_pass $wharf;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "resolver 127.0.0.11" in conf


# --------------------------------------------------------------------------- kustomize


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _env_file(path: Path) -> dict[str, str]:
    if not path.exists() and path.with_name(path.name + ".example").exists():
        # The operator's secret.env is not in the repository: build from its template.
        path = path.with_name(path.name + ".example")
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def build_k8s(root: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize root` for the features these files use (no hash suffixes;
    Secrets keep their values as plain `stringData`)."""
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (root / resource).resolve()
        objects.extend(build_k8s(path) if path.is_dir() else _load_docs(path))
    for gen in kustomization.get("secretGenerator", []):
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data.update(_env_file(root / env))
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        if gen.get("behavior") == "merge":
            secret = find(objects, "Secret", gen["name"])
            secret["stringData"].update(data)
        else:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": gen["name"]},
                    "type": "Opaque",
                    "stringData": data,
                }
            )
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in pod_spec(obj).get("containers", []) if pod_spec(obj) else []:
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image.get('newTag', 'latest')}"
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def k8s_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


ROOTS = {"external-mongodb": K8S, "with-mongodb": K8S / "mongodb"}


@pytest.fixture(scope="module", params=sorted(ROOTS))
def k8s(request) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build_k8s(ROOTS[request.param])


def test_k8s_objects_match_the_kubernetes_schemas(k8s):
    name, objects = k8s
    kinds = sorted(o["kind"] for o in objects)
    expected = ["Deployment", "PodDisruptionBudget", "Secret", "Service"]
    if name == "with-mongodb":
        expected += ["Job", "Service", "StatefulSet"]
    assert kinds == sorted(expected), kinds
    for obj in objects:
        # strict: a misspelt or misplaced field (e.g. `readinessprobe`) is an error.
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_k8s_schema_check_catches_a_misspelt_field():
    deployment = copy.deepcopy(find(build_k8s(K8S), "Deployment", "wharf"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_k8s_manifests_are_namespace_less(k8s):
    _, objects = k8s
    for obj in objects:
        assert "namespace" not in obj["metadata"], obj["metadata"]
    for root in ROOTS.values():
        assert "namespace" not in yaml.safe_load((root / "kustomization.yaml").read_text())


def test_k8s_workers_are_one_cluster_with_unique_ids(k8s):
    _, objects = k8s
    deployment = find(objects, "Deployment", "wharf")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = k8s_env(container)
    assert unknown_variables(env) == []
    assert env["WHARF_CLUSTER"] == "true"
    # Unique per pod: the pod's own name.
    assert env["WAHA_WORKER_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Reachable by the others: the pod's IP, defined before the variable that uses it
    # (Kubernetes expands $(NAME) only from earlier entries), on the container's port.
    names = [e["name"] for e in container["env"]]
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert names.index("POD_IP") < names.index("WHARF_ADVERTISE_URL")
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    assert port == dockerfile()["port"]
    assert env["WHARF_ADVERTISE_URL"] == f"http://$(POD_IP):{port}"
    # One Secret for every pod: the shared key, cluster secret and MongoDB URL.
    refs = [s["secretRef"]["name"] for s in container["envFrom"]]
    assert refs == ["wharf"]
    secret = find(objects, "Secret", "wharf")["stringData"]
    assert set(secret) == {"WAHA_API_KEY", "WHARF_CLUSTER_SECRET", "WHATSAPP_SESSIONS_MONGO_URL"}
    assert unknown_variables(secret) == []
    assert len(secret["WHARF_CLUSTER_SECRET"]) >= 16
    assert not set(secret) & set(env), "a Secret value is not overridden by env"
    assert deployment["spec"]["replicas"] >= 3
    # Rolling updates take one worker at a time and start its replacement first.
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    # The drain after SIGTERM fits the grace period (Compose gives the same).
    assert spec["terminationGracePeriodSeconds"] >= 30


def test_k8s_probes_hit_what_wharf_serves(k8s):
    _, objects = k8s
    df = dockerfile()
    paths = served_paths()
    (container,) = find(objects, "Deployment", "wharf")["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe_name in ["livenessProbe", "readinessProbe"]:
        probe = container[probe_name]
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] in paths, probe
            assert probe["httpGet"]["port"] in port_names or probe["httpGet"]["port"] in port_names.values()
        else:
            assert probe["exec"]["command"] == healthcheck_command(df), probe
    assert "/ping" in paths and "/health" in paths
    # The healthcheck asks /health with WAHA_API_KEY, which the Secret provides.
    assert "WAHA_API_KEY" in find(objects, "Secret", "wharf")["stringData"]


def test_k8s_pods_run_as_the_image_user_with_writable_folders(k8s):
    _, objects = k8s
    df = dockerfile()
    assert df["user"] == df["user_name"], "the image runs as the user it creates"
    spec = find(objects, "Deployment", "wharf")["spec"]["template"]["spec"]
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == df["uid"] and sc["runAsGroup"] == df["uid"] and sc["fsGroup"] == df["uid"]
    (container,) = spec["containers"]
    csc = container["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"]["drop"] == ["ALL"]
    if csc.get("readOnlyRootFilesystem"):
        env = k8s_env(container)
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"] for v in spec["volumes"]}
        assert {m["name"] for m in container["volumeMounts"]} <= volumes
        for folder in [env["WHATSAPP_FILES_FOLDER"], env["WAHA_LOCAL_STORE_BASE_DIR"], "/tmp"]:
            assert folder in mounts, f"{folder} is writable"


def test_k8s_service_and_budget_select_the_workers(k8s):
    _, objects = k8s
    deployment = find(objects, "Deployment", "wharf")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = find(objects, "Service", "wharf")
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    pdb = find(objects, "PodDisruptionBudget", "wharf")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_k8s_mongodb_overlay_is_a_replica_set_the_workers_use():
    objects = build_k8s(K8S / "mongodb")
    sts = find(objects, "StatefulSet", "mongodb")
    service = find(objects, "Service", "mongodb")
    assert service["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "mongodb"
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    replicas = sts["spec"]["replicas"]
    assert replicas == 3
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    rs = args[args.index("--replSet") + 1]
    members = [f"mongodb-{i}.mongodb:27017" for i in range(replicas)]
    url = find(objects, "Secret", "wharf")["stringData"]["WHATSAPP_SESSIONS_MONGO_URL"]
    assert url == f"mongodb://{','.join(members)}/?replicaSet={rs}"
    script = "\n".join(find(objects, "Job", "mongodb-init")["spec"]["template"]["spec"]["containers"][0]["command"])
    assert f'_id: "{rs}"' in script
    for member in members:
        assert f'"{member}"' in script or member in script, member
    # The other Secret values still come from secret.env (merged, not replaced).
    assert set(find(objects, "Secret", "wharf")["stringData"]) == {
        "WAHA_API_KEY",
        "WHARF_CLUSTER_SECRET",
        "WHATSAPP_SESSIONS_MONGO_URL",
    }


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_the_same_objects(tmp_path):
    # kustomize needs the real secret.env: build from a copy with the template in place.
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root)
    shutil.copy(copy_root / "base" / "secret.env.example", copy_root / "base" / "secret.env")
    for name, root in ROOTS.items():
        out = subprocess.run(
            ["kubectl", "kustomize", str(copy_root / root.relative_to(K8S))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        built = [d for d in yaml.safe_load_all(out.stdout) if d]
        # kubectl adds a content hash to the Secret's name.
        got = sorted((o["kind"], re.sub(r"^(wharf)-[a-z0-9]{10}$", r"\1", o["metadata"]["name"])) for o in built)
        mine = sorted((o["kind"], o["metadata"]["name"]) for o in build_k8s(root))
        assert got == mine, name
        deployment = next(o for o in built if o["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"][0]["secretRef"]["name"].startswith("wharf-"), "renamed with the hash"
        assert container == {
            **find(build_k8s(root), "Deployment", "wharf")["spec"]["template"]["spec"]["containers"][0],
            "envFrom": container["envFrom"],
        }


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")
def test_nginx_accepts_the_load_balancer_config(tmp_path):
    out = subprocess.run(
        [
            "nginx",
            "-t",
            "-c",
            str(DOCKER / "nginx.cluster.conf"),
            "-g",
            f"pid {tmp_path}/nginx.pid; error_log stderr;",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr


# --------------------------------------------------------------------------- a real worker


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's `${NAME:?message}` / `${NAME:-default}` / `${NAME}` with `given`."""

    def one(m: re.Match) -> str:
        name, op, rest = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in given:
            return given[name]
        if op == ":-":
            return rest
        raise AssertionError(f"{name} is required: {rest}")

    return re.sub(r"\$\{(\w+)(:[?-])?([^}]*)\}", one, value)


def compose_worker_env(given: dict[str, str]) -> tuple[str, dict[str, str]]:
    name, svc = sorted(compose_workers(load_compose()).items())[0]
    return name, {k: _interpolate(str(v), given) for k, v in svc["environment"].items()}


def k8s_worker_env(given: dict[str, str], pod_name: str, pod_ip: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it: the Secret (envFrom), then
    `env` in order, fieldRefs from the pod, $(NAME) from earlier entries."""
    objects = build_k8s(K8S)
    (container,) = find(objects, "Deployment", "wharf")["spec"]["template"]["spec"]["containers"]
    env = dict(find(objects, "Secret", "wharf")["stringData"])
    env.update({k: given[k] for k in env if k in given})
    fields = {"metadata.name": pod_name, "status.podIP": pod_ip}
    for entry in container["env"]:
        if "valueFrom" in entry:
            env[entry["name"]] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], entry["value"])
    return env


@pytest.mark.parametrize("layout", ["compose", "k8s"])
def test_a_worker_starts_with_the_layouts_environment(layout, store, start_server, tmp_path):
    if store != "mongo":
        pytest.skip("cluster mode needs the MongoDB store: runs in the MongoDB pass")
    key = secrets.token_hex(16)
    given = {"WAHA_API_KEY": key, "WHARF_CLUSTER_SECRET": secrets.token_hex(12)}
    if layout == "compose":
        worker_id, env = compose_worker_env(given)
    else:
        worker_id = "wharf-7d9c8b6f4-x2x8q"
        env = k8s_worker_env(given, worker_id, "127.0.0.1")
    assert env["WAHA_WORKER_ID"] == worker_id and env["WHARF_CLUSTER"] == "true"
    # What only exists in the container, and what the harness provides (its MongoDB, a
    # namespace of this test's own, a free port).
    env.pop("WHATSAPP_SESSIONS_MONGO_URL")
    for var in ["WHATSAPP_FILES_FOLDER", "WAHA_LOCAL_STORE_BASE_DIR"]:
        if var in env:
            env[var] = str(tmp_path / var.lower())
    env.pop("WAHA_API_KEY")
    srv = start_server(api_key=key, **env)
    assert srv.get("/health").status_code == 200
    # The image's healthcheck command (docker/Dockerfile, compose, readiness probe).
    check = subprocess.run(
        [str(WHARF_BIN), "healthcheck"],
        env={"PATH": os.environ.get("PATH", ""), "PORT": str(srv.port), "WAHA_API_KEY": key},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check
    # It runs as a cluster worker under the configured id: placement names it.
    r = srv.post("/api/sessions", json={"name": "deploy"})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        placed = [line for line in srv.logs().splitlines() if "session placed" in line]
        if placed:
            break
        time.sleep(0.2)
    assert placed and worker_id in placed[0], srv.logs()
