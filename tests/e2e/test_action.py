"""action.yml: its inputs are the CLI's options, and its annotate step works as Actions runs it.

The step's `run:` script is run with bash and the environment Actions would give it (its `env:`
mapping with every `${{ }}` evaluated), against a local moto server; what it wrote is read
back with an independent client. setup-python and the pip install are not run: gos3matic is
installed here already, and `steps.install.outputs.python` is this interpreter.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.ci_envs import GITHUB_ENV

REPO = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
PREFIX = "myapp/build/package/42.1/"

# Inputs that configure the action itself rather than pass an option of `gos3matic annotate`.
ACTION_ONLY = {"install-from", "python-version", "extra-args"}
POSITIONAL = {"bucket": "BUCKET", "path": "PATH"}
OPTION = {"keys": "--key"}  # the rest are --<input name>

EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def step(step_id: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = ACTION["runs"]["steps"]
    return next(s for s in steps if s.get("id") == step_id)


def evaluate(text: str, inputs: Mapping[str, str], context: Mapping[str, str]) -> str:
    """`${{ inputs.x }}` and `${{ steps.s.outputs.o }}` as Actions evaluates them (strings)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("inputs."):
            key = name.removeprefix("inputs.")
            assert key in ACTION["inputs"], f"unknown input {key}"
            return inputs.get(key, str(ACTION["inputs"][key].get("default", "")))
        assert name in context, f"no value for ${{{{ {name} }}}} in this test"
        return context[name]

    return EXPRESSION.sub(value, text)


def run_step(
    server: Any,
    inputs: Mapping[str, str],
    tmp_path: Path,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The annotate step's script under bash, as a runner would run it; and its outputs."""
    annotate = step("annotate")
    context = {"steps.install.outputs.python": sys.executable, "github.action_path": str(REPO)}
    output_file = tmp_path / "github_output"
    output_file.write_text("")
    env = {
        **server.env(),
        **(extra_env or {}),
        "GITHUB_OUTPUT": str(output_file),
        "RUNNER_TEMP": str(tmp_path),
        **{name: evaluate(str(raw), inputs, context) for name, raw in annotate["env"].items()},
    }
    script = tmp_path / "annotate.sh"
    script.write_text(annotate["run"])
    # Actions runs a `shell: bash` step as `bash --noprofile --norc -eo pipefail {0}`.
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=REPO,  # `python -m gos3matic` from the checkout: this worktree's code
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, parse_outputs(output_file.read_text())


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's `name=value` and `name<<DELIMITER ... DELIMITER` forms."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            outputs[name] = "\n".join(body)
        elif line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def put(s3: Any, bucket: str, key: str, body: bytes = b"payload", **extra: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


# -- the metadata ---------------------------------------------------------------------------------


def test_the_action_is_composite_and_runs_setup_python_then_install_then_annotate() -> None:
    assert ACTION["runs"]["using"] == "composite"
    uses = [s.get("uses", "") for s in ACTION["runs"]["steps"]]
    assert uses[0].startswith("actions/setup-python@")
    assert [s.get("id") for s in ACTION["runs"]["steps"]] == ["python", "install", "annotate"]
    assert {"bucket", "path"} == {k for k, v in ACTION["inputs"].items() if v.get("required")}
    assert step("install")["env"]["GOS3MATIC_ACTION_PATH"] == "${{ github.action_path }}"


def test_no_expression_is_ever_interpolated_into_a_script() -> None:
    """Inputs reach the scripts only through env: `${{ }}` in run: would be shell injection."""
    for each in ACTION["runs"]["steps"]:
        assert "${{" not in each.get("run", ""), each.get("name")
        for name, raw in each.get("env", {}).items():
            assert re.fullmatch(r"\$\{\{ [A-Za-z0-9_.-]+ \}\}", str(raw)), name


def test_every_input_maps_to_a_real_option_of_annotate() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "gos3matic", "annotate", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    annotate = step("annotate")
    script = annotate["run"]
    by_input = {
        match.group(1).removeprefix("inputs."): name
        for name, raw in annotate["env"].items()
        if (match := EXPRESSION.fullmatch(str(raw))) and match.group(1).startswith("inputs.")
    }
    for name in ACTION["inputs"]:
        if name in ACTION_ONLY:
            continue
        assert name in by_input, f"input {name} never reaches the annotate step"
        variable = by_input[name]
        if name in POSITIONAL:
            assert POSITIONAL[name] in help_text
            assert f'"${variable}"' in script
        else:
            option = OPTION.get(name, f"--{name}")
            assert re.search(rf"\s{re.escape(option)}[ =]", help_text), option
            assert f'"{option}=$' in script, option
    outputs = ACTION["outputs"]
    assert outputs["summary"]["value"] == "${{ steps.annotate.outputs.summary }}"
    assert outputs["exit-code"]["value"] == "${{ steps.annotate.outputs.exit-code }}"


# -- the annotate step against a local server --------------------------------------------------


@pytest.fixture(autouse=True)
def _bash() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")


def test_the_annotate_step_annotates_and_reports_the_summary(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}app.tar.gz", ContentType="application/gzip")
    put(moto_client, moto_bucket, f"{PREFIX}dist/a.bin", Metadata={"built-by": "gha"})
    inputs = {
        "bucket": moto_bucket,
        "path": PREFIX.rstrip("/"),
        "label": "42",
        "username": "mona",
        "traceback-url": "https://github.com/octocat/app/actions/runs/99",
        "keys": "source=github\n  blessed  \n\n",
        "endpoint-url": moto_s3.endpoint_url,
        "extra-args": "--workers 4\n--allow-empty",
    }

    result, outputs = run_step(moto_s3, inputs, tmp_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(outputs["summary"])
    assert outputs["exit-code"] == "0"
    assert (summary["annotated"], summary["marker_state"]) == (2, "written")
    assert json.loads(result.stdout) == summary  # the log shows it too
    expected = {
        "go_pipeline_label": "42",
        "user": "mona",
        "traceback_url": "https://github.com/octocat/app/actions/runs/99",
        "source": "github",
        "blessed": "blessed",
    }
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert marker == {**expected, "completed": "completed"}
    head = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}dist/a.bin")
    assert head["Metadata"] == {**expected, "built-by": "gha"}
    gz = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}app.tar.gz")
    assert gz["ContentType"] == "application/gzip"


def test_inputs_are_data_never_shell_code(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    canary = tmp_path / "pwned"
    inputs = {
        "bucket": moto_bucket,
        "path": PREFIX,
        "label": "7",
        "username": f'x"; touch {canary}; echo "',
        "keys": f"note=$(touch {canary})\nother=`touch {canary}`",
        "endpoint-url": moto_s3.endpoint_url,
        "extra-args": "--workers 2",
    }

    result, _ = run_step(moto_s3, inputs, tmp_path)

    assert result.returncode == 0, result.stderr
    assert not canary.exists()
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert marker["user"] == f'x"; touch {canary}; echo "'
    assert marker["note"] == f"$(touch {canary})"
    assert marker["other"] == f"`touch {canary}`"


def test_a_glob_or_a_command_in_extra_args_is_passed_as_is(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    before = moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin")["ETag"]
    canary = tmp_path / "pwned"
    inputs = {
        "bucket": moto_bucket,
        "path": PREFIX,
        "label": "7",
        "endpoint-url": moto_s3.endpoint_url,
        "extra-args": f"--workers * $(touch {canary})",
    }

    result, outputs = run_step(moto_s3, inputs, tmp_path)

    assert result.returncode == 2  # '*' is not a number: refused, one line, before any write
    assert "--workers" in result.stderr and "invalid int value: '*'" in result.stderr
    assert not canary.exists()
    assert outputs["exit-code"] == "2"
    assert moto_client.head_object(Bucket=moto_bucket, Key=f"{PREFIX}a.bin")["ETag"] == before


def test_a_value_starting_with_a_dash_stays_a_value(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    inputs = {
        "bucket": moto_bucket,
        "path": PREFIX,
        "label": "-1",
        "username": "--dry-run",
        "endpoint-url": moto_s3.endpoint_url,
    }

    result, _ = run_step(moto_s3, inputs, tmp_path)

    assert result.returncode == 0, result.stderr
    marker = moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"]
    assert (marker["go_pipeline_label"], marker["user"]) == ("-1", "--dry-run")


def test_a_failing_run_sets_the_exit_code_output_and_fails_the_step(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    inputs = {
        "bucket": moto_bucket,
        "path": PREFIX,
        "label": "7",
        "endpoint-url": moto_s3.endpoint_url,
    }

    result, outputs = run_step(moto_s3, inputs, tmp_path)  # nothing under PREFIX

    assert result.returncode == 1
    assert outputs["exit-code"] == "1"
    assert json.loads(outputs["summary"])["marker_state"] == "nothing-to-annotate"
    assert "Contents" not in moto_client.list_objects_v2(Bucket=moto_bucket)


def test_without_label_username_or_url_the_step_takes_githubs_own(
    moto_s3: Any, moto_client: Any, moto_bucket: str, tmp_path: Path
) -> None:
    put(moto_client, moto_bucket, f"{PREFIX}a.bin")
    inputs = {"bucket": moto_bucket, "path": PREFIX, "endpoint-url": moto_s3.endpoint_url}

    result, outputs = run_step(moto_s3, inputs, tmp_path, extra_env=GITHUB_ENV)

    assert result.returncode == 0, result.stderr
    assert "$GITHUB_RUN_NUMBER (GitHub Actions)" in result.stderr  # the table, with --json
    assert moto_client.head_object(Bucket=moto_bucket, Key=PREFIX)["Metadata"] == {
        "go_pipeline_label": "42",
        "user": "mona",
        "traceback_url": "https://github.com/octocat/Hello-World/actions/runs/1658821493",
        "completed": "completed",
    }
    assert outputs["exit-code"] == "0"
