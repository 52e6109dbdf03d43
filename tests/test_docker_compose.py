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
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "beat")
SERVICES = {"migrate", "web", "worker", "beat", "postgres", "redis", "nginx"}
NGINX_TEMPLATE = REPO / "deploy" / "nginx.conf.template"
TIMEOUT = 60
# What an operator supplies for the variables the file requires (`${VAR:?message}`); every other variable
# takes the file's own default.
OPERATOR_ENV = {
    "SECRET_KEY": "compose-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "SIEVE_PSEUDONYM_SECRET": "compose-test-pseudonym-secret-0123456789-abcdefghijklmnop",
}


def _run(args, stdin=None):
    return subprocess.run(
        args,
        cwd=REPO,
        input=stdin,
        env={**os.environ, **OPERATOR_ENV},
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
        assert [_container_port(p) for p in rendered["services"]["nginx"]["ports"]] == ["8000"]


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


def test_compose_file_defines_the_services_and_the_one_shot_migration():
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


def test_only_the_nginx_proxy_publishes_a_port_and_it_is_8000():
    services = _services()
    assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]
    assert [_container_port(p) for p in services["nginx"]["ports"]] == ["8000"]
    assert services["web"]["expose"] == ["8000"]


def test_every_service_but_migrate_has_a_healthcheck():
    missing = [name for name, s in _services().items()
               if name != "migrate" and not s.get("healthcheck", {}).get("test")]
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
    required = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SIEVE_DATA_DIR",
                "SIEVE_PSEUDONYM_SECRET"}
    services = _services()
    for name in ("migrate", *APP_SERVICES):
        assert required <= set(services[name]["environment"]), name
    assert services["web"]["environment"]["REDIS_URL"].endswith("redis://redis:6379/0}")
    assert "@postgres:5432/" in services["web"]["environment"]["DATABASE_URL"]

INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, given: dict) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?message}` against `given` (raises on a missing one)."""
    def one(match):
        name, operator, argument = match.groups()
        if given.get(name):
            return given[name]
        if operator in (":?", "?"):
            raise KeyError(f"{name}: {argument}")
        return argument if operator else ""
    return INTERPOLATION.sub(one, str(value))


def app_environment(given: dict) -> dict:
    return {k: interpolate(v, given) for k, v in _services()["web"]["environment"].items()}


def test_the_secrets_have_no_default_in_the_compose_file():
    for name in OPERATOR_ENV:
        with pytest.raises(KeyError, match=name):
            app_environment({k: v for k, v in OPERATOR_ENV.items() if k != name})
    assert app_environment(OPERATOR_ENV)["SIEVE_PSEUDONYM_SECRET"] != app_environment(OPERATOR_ENV)["SECRET_KEY"]


def test_https_settings_are_on_in_the_compose_file():
    env = app_environment(OPERATOR_ENV)
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                 "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD"):
        assert env[name] == "true", name
    assert int(env["SECURE_HSTS_SECONDS"]) >= 31536000
    assert env["DEBUG"] == "false"


def _manage_check(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a fresh process with exactly this environment (none of the suite's own)."""
    return subprocess.run([sys.executable, "manage.py", "check", *args], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env}, timeout=TIMEOUT)


def test_check_deploy_passes_with_the_compose_environment():
    result = _manage_check(app_environment(OPERATOR_ENV), "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_without_its_secrets_sieve_refuses_to_start_and_names_them():
    env = app_environment(OPERATOR_ENV)
    del env["SECRET_KEY"], env["SIEVE_PSEUDONYM_SECRET"]
    result = _manage_check(env)
    assert result.returncode != 0
    assert "sieve.E001" in result.stderr and "SECRET_KEY is not set" in result.stderr
    assert "sieve.E002" in result.stderr and "SIEVE_PSEUDONYM_SECRET is not set" in result.stderr


def _nginx_directives() -> dict[str, list[str]]:
    """The template's simple directives (name -> values), comments dropped."""
    found = {}
    for line in NGINX_TEMPLATE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith(";") and not line.startswith("return"):
            name, _, value = line[:-1].partition(" ")
            found.setdefault(name, []).append(value.strip())
    return found


def _default(value: str) -> str:
    """The default of a compose `${NAME:-default}` value."""
    assert value.startswith("${") and ":-" in value, value
    return value[value.index(":-") + 2:-1]


def test_nginx_proxies_to_web_with_its_template_mounted_and_waits_for_web():
    nginx = _services()["nginx"]
    assert nginx["image"].startswith("nginx:1.27")
    assert "./deploy/nginx.conf.template:/etc/nginx/templates/default.conf.template:ro" in nginx["volumes"]
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(nginx["healthcheck"]["test"])
    directives = _nginx_directives()
    assert directives["server"] == ["web:8000"] and directives["proxy_pass"] == ["http://sieve_web"]


def test_nginx_buffers_requests_and_times_out_slow_headers_and_bodies():
    directives = _nginx_directives()
    assert directives["proxy_request_buffering"] == ["on"]
    for name, most in (("client_header_timeout", 30), ("client_body_timeout", 60)):
        (value,) = directives[name]
        assert value.endswith("s") and 0 < int(value[:-1]) <= most, (name, value)
    (read,) = directives["proxy_read_timeout"]
    assert int(read[:-1]) >= 300  # a maximum-size upload is checked inside its request


def test_nginx_refuses_bodies_at_the_apps_upload_limit():
    services = _services()
    assert _nginx_directives()["client_max_body_size"] == ["${SIEVE_MAX_UPLOAD_BYTES}"]
    assert services["nginx"]["environment"]["NGINX_ENVSUBST_FILTER"] == "^SIEVE_"
    proxy = _default(services["nginx"]["environment"]["SIEVE_MAX_UPLOAD_BYTES"])
    app = _default(services["web"]["environment"]["SIEVE_MAX_UPLOAD_BYTES"])
    env = {k: v for k, v in os.environ.items() if k != "SIEVE_MAX_UPLOAD_BYTES"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="x", SIEVE_PSEUDONYM_SECRET="y")
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SIEVE_MAX_UPLOAD_BYTES)"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert proxy == app == result.stdout.strip()


def test_web_runs_the_threaded_gunicorn_settings_that_make_run_uses():
    command = _services()["web"]["command"]
    assert command[command.index("--config") + 1] == "deploy/gunicorn.conf.py"
    assert "deploy/gunicorn.conf.py" in (REPO / "bin" / "run").read_text()


def test_the_login_throttle_counts_the_client_behind_the_tls_terminator_and_nginx():
    """Behind two proxies that append to X-Forwarded-For, counting by the TCP peer would lock everyone out at once."""
    environment = yaml.safe_load(COMPOSE_FILE.read_text())["x-app-environment"]
    assert environment["SIEVE_PROXY_COUNT"] == "${SIEVE_PROXY_COUNT:-2}"
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in NGINX_TEMPLATE.read_text()
