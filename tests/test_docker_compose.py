"""Static checks of docker-compose.yml: no daemon, no images, no database.

Two layers:
- the installed Docker client validates the file (`docker compose config -q`,
  else `docker-compose config -q`, else `docker stack config`); with none of
  them the test is skipped, or fails when CI=true;
- the parsed YAML is checked for the shape the deployment relies on
  (scalable workers, a single beat, healthchecks, ordering, shared data).

`docker stack config` only knows the swarm (3.x) schema, which rejects two
compose-spec features this file uses on purpose: the top-level `name` and
the long `depends_on` form with conditions. For that client the test feeds it
the file with just those two reduced (name dropped, depends_on turned into the
list of the same services); every other key, value and interpolation is still
checked by the client, and the conditions themselves are asserted below.
"""
import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "beat")
SERVICES = {"migrate", "web", "worker", "beat", "postgres", "redis"}
TIMEOUT = 60


def _run(args, stdin=None):
    return subprocess.run(
        args,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _works(args):
    try:
        return _run(args).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services():
    return _compose()["services"]


def for_docker_stack(compose):
    """The compose file reduced to what the swarm schema accepts (see module doc)."""
    reduced = copy.deepcopy(compose)
    reduced.pop("name", None)
    for service in reduced["services"].values():
        if isinstance(service.get("depends_on"), dict):
            service["depends_on"] = list(service["depends_on"])
    return reduced


def _validator():
    """(label, argv, stdin) for the first Docker client that can validate, else None."""
    docker = shutil.which("docker")
    if docker and _works([docker, "compose", "version"]):
        return ("docker compose config -q", [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"], None)
    legacy = shutil.which("docker-compose")
    if legacy and _works([legacy, "version"]):
        return ("docker-compose config -q", [legacy, "-f", str(COMPOSE_FILE), "config", "-q"], None)
    if docker and _works([docker, "stack", "config", "--help"]):
        stdin = yaml.safe_dump(for_docker_stack(_compose()), sort_keys=False)
        return ("docker stack config", [docker, "stack", "config", "-c", "-"], stdin)
    return None


def _container_port(mapping):
    if isinstance(mapping, dict):
        return str(mapping["target"])
    return str(mapping).rsplit(":", 1)[-1].split("/")[0]


def test_compose_file_is_valid_for_the_installed_docker_client():
    validator = _validator()
    if validator is None:
        reason = (
            "no Docker client that validates compose files was found "
            "(tried `docker compose`, `docker-compose`, `docker stack config`)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI=true, so this is a failure, not a skip")
        pytest.skip(reason)
    label, argv, stdin = validator
    result = _run(argv, stdin)
    assert result.returncode == 0, f"{label} rejected docker-compose.yml:\n{result.stderr}{result.stdout}"
    if label == "docker stack config":
        rendered = yaml.safe_load(result.stdout)
        assert set(rendered["services"]) == SERVICES
        assert [_container_port(p) for p in rendered["services"]["web"]["ports"]] == ["8000"]


def test_docker_stack_reduction_keeps_every_service_and_dependency():
    compose = _compose()
    reduced = for_docker_stack(compose)
    assert "name" not in reduced
    for name, service in compose["services"].items():
        assert sorted(reduced["services"][name].get("depends_on", [])) == sorted(service.get("depends_on", {}))
        rest = {k: v for k, v in service.items() if k != "depends_on"}
        assert {k: v for k, v in reduced["services"][name].items() if k != "depends_on"} == rest


def test_compose_file_follows_the_compose_spec_without_a_version_key():
    assert "version" not in _compose()


def test_compose_file_defines_the_five_services_and_the_one_shot_migration():
    assert set(_services()) == SERVICES


def test_postgres_and_redis_use_the_agreed_major_versions():
    services = _services()
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"


def test_worker_can_be_scaled_because_it_has_no_container_name_or_host_ports():
    worker = _services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"][:4] == ["celery", "-A", "config", "worker"]


def test_no_service_pins_a_container_name():
    assert [name for name, s in _services().items() if "container_name" in s] == []


def test_only_web_publishes_a_port_and_it_is_8000():
    services = _services()
    assert [name for name, s in services.items() if s.get("ports")] == ["web"]
    assert [_container_port(p) for p in services["web"]["ports"]] == ["8000"]


def test_every_service_but_migrate_has_a_healthcheck():
    missing = [name for name, s in _services().items() if name != "migrate" and not s.get("healthcheck", {}).get("test")]
    assert missing == []


def test_web_healthcheck_asks_healthz_without_curl():
    test = " ".join(_services()["web"]["healthcheck"]["test"])
    assert "/healthz" in test
    assert "urllib" in test
    assert "curl" not in test


def test_worker_healthcheck_pings_its_own_celery_node():
    test = " ".join(_services()["worker"]["healthcheck"]["test"])
    assert "inspect ping" in test
    assert "celery@$$HOSTNAME" in test or "celery@$HOSTNAME" in test


def test_beat_runs_as_exactly_one_replica():
    beat = _services()["beat"]
    assert "scale" not in beat
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert beat["command"][:4] == ["celery", "-A", "config", "beat"]


def test_app_services_wait_for_healthy_backing_services_and_finished_migrations():
    services = _services()
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"][:3] == ["python", "manage.py", "migrate"]


def test_web_and_worker_share_the_data_volume_at_sieve_data_dir():
    compose = _compose()
    services = compose["services"]
    mounts = {}
    for name in ("web", "worker"):
        data_dir = services[name]["environment"]["SIEVE_DATA_DIR"]
        volume = [v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == data_dir]
        assert len(volume) == 1, f"{name} mounts nothing at SIEVE_DATA_DIR={data_dir}"
        mounts[name] = volume[0]
    assert mounts["web"] == mounts["worker"]
    assert mounts["web"] in compose["volumes"], "the shared data must be a named volume"


def test_app_services_get_every_setting_from_the_environment():
    required = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SIEVE_DATA_DIR", "SIEVE_PSEUDONYM_SECRET"}
    services = _services()
    for name in ("migrate", *APP_SERVICES):
        assert required <= set(services[name]["environment"]), name
    assert services["web"]["environment"]["REDIS_URL"].endswith("redis://redis:6379/0}")
    assert "@postgres:5432/" in services["web"]["environment"]["DATABASE_URL"]
