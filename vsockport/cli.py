"""Command line: parse options, call the engine, hand results to report."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from vsockport import __version__, engine, formats, report
from vsockport.console import Output, outputs
from vsockport.report import display_path
from vsockport.results import RunResult
from vsockport.config import ConfigError, ConfigResolver, Overrides
from vsockport.files import is_force_excluded
from vsockport.rules import all_rules, find_rule

EXIT_OK, EXIT_PENDING, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 4, 5


class _Command(click.Group):
    """Exit codes as README documents them: a bad command line is 4, an internal error 5 (one line;
    `--debug` shows the traceback), a closed output pipe ends quietly."""

    def main(self, *args, **kwargs):
        # A terminated run unwinds like an interrupted one: a write in progress removes its temporary.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(128 + signal.SIGINT)
        except BrokenPipeError:
            _quiet_broken_pipe()

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, BrokenPipeError):
            raise
        except ConfigError as exc:
            click.echo(f"vsockport: error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if ctx.obj and ctx.obj.get("debug"):
                import traceback

                traceback.print_exc()
            else:
                click.echo(f"vsockport: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
            sys.exit(EXIT_INTERNAL)


def _exit_on_signal(signum, frame) -> None:
    sys.exit(128 + signum)


def _quiet_broken_pipe() -> None:
    """`vsockport diff . | head`: the reader went away; end without a traceback or another write."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    sys.exit(EXIT_PENDING)


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vsockport")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Port Python socket programs from TCP/IP to vSockets (AF_VSOCK / VMware VMCI sockets).

    \b
    Exit codes: 0 nothing (left) to port; 1 changes pending, findings to review or unsafe fixes
    held back; 2 errors in files or configuration (unreadable, unparsable, not writable); 3 both
    1 and 2; 4 a bad command line; 5 an internal error.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _port_options(func):
    options = [
        click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path)),
        click.option("--cid", "cids", multiple=True, metavar="HOST=CID",
                     help="Map a host name to a CID, an endpoint HOST:PORT to CID:PORT, or a host to unix:PATH (a "
                          "Firecracker VMM's socket); repeatable."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching GLOB (repeatable)."),
        click.option("--select", multiple=True, metavar="CODES", help="Run only these rules (codes or prefixes, comma-separated)."),
        click.option("--ignore", multiple=True, metavar="CODES", help="Do not run these rules (codes or prefixes, comma-separated)."),
        click.option("--runtime-module", default=None, metavar="NAME", help="Name of the injected runtime module [vsock_runtime]."),
        click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False, path_type=Path),
                     help="Use this configuration file (vsockport.toml or pyproject.toml) for every file."),
        click.option("--isolated", is_flag=True, help="Read no configuration file."),
        click.option("--no-gitignore", is_flag=True, help="Also port files that git ignores."),
        click.option("--force-exclude", is_flag=True, help="Apply excludes to files named explicitly too (for pre-commit)."),
        click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that can change behaviour (hosts resolved at run time)."),
        click.option("--vmci-datagrams", is_flag=True, default=None,
                     help="Port UDP sockets to VMware's VMCI datagrams (VMware only) instead of leaving them on IP."),
        click.option("--no-cache", is_flag=True, help="Port every file again instead of reusing unchanged results."),
        click.option("--stdin-filename", default=None, type=click.Path(path_type=Path), metavar="PATH",
                     help="With PATH `-`: the file standing for stdin (its configuration and runtime import)."),
        click.option("--exit-zero", is_flag=True, help="Exit 0 even with changes pending or findings to review (errors still count)."),
        click.option("--statistics", is_flag=True, help="Print the number of findings per code and state instead of diffs and findings."),
        click.option("--show-fixes", is_flag=True, help="List the fixes too, not only what is left."),
        click.option("--show-runtime", is_flag=True, help="Show the runtime module's diff instead of one line."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [CPU count]."),
        click.option("-q", "--quiet", is_flag=True, help="Print only the diff, findings and errors (no summary, runtime line or notes)."),
        click.option("--output-format", type=click.Choice(formats.FORMATS), default="text", show_default=True,
                     help="text: diff and findings; json, github (workflow annotations) or sarif (2.1.0) on stdout."),
        click.option("--color/--no-color", default=None, help="Force colored output on or off (NO_COLOR and FORCE_COLOR are honoured)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rich_console(**kwargs):
    # emoji=False: rich would turn a finding at line 100 (`path:100:9:`) into `path💯9:`.
    from rich.console import Console

    return Console(emoji=False, **kwargs)


def _run(paths, cids, exclude, select, ignore, runtime_module, config_file, isolated, no_gitignore, force_exclude,
         unsafe_fixes, vmci_datagrams, no_cache, stdin_filename, exit_zero, statistics, show_fixes, show_runtime, jobs, quiet,
         output_format, color, *, write: bool, show_diff: bool) -> int:
    overrides = Overrides.parse(cids=cids, exclude=exclude, select=select, ignore=ignore, runtime_module=runtime_module,
                                respect_gitignore=False if no_gitignore else None, force_exclude=force_exclude,
                                unsafe_fixes=unsafe_fixes, vmci_datagrams=vmci_datagrams or None)
    if config_file is not None and isolated:
        raise click.UsageError("--config and --isolated exclude each other")
    resolver = ConfigResolver(overrides, config_file=config_file, isolated=isolated)
    out, err = outputs(color)
    if Path("-") in paths:
        if len(paths) != 1:
            raise click.UsageError("`-` (stdin) cannot be mixed with other paths")
        return _run_stdin(resolver, stdin_filename or Path("stdin.py"), out, err, write=write, quiet=quiet,
                          exit_zero=exit_zero, show_fixes=show_fixes)
    if statistics and output_format not in ("text", "json"):
        raise click.UsageError("--statistics prints text or json (--output-format text or json)")
    if output_format != "text":
        result = engine.run(paths, resolver, write=write, jobs=jobs, use_cache=not no_cache)
        if statistics:  # ruff's `--statistics --output-format json`: the counts as a JSON array
            out.file.write(json.dumps(report.statistic_counts(result, applied=write), indent=2) + "\n")
            for line in report.error_lines(result):  # errors are never hidden: on stderr, as text
                err.print(line, style="red")
            return report.exit_code(result, applied=write, exit_zero=exit_zero)
        if output_format == "json":
            out.file.write(formats.to_json(result, applied=write) + "\n")
        elif output_format == "github":
            out.file.write(formats.to_github(result, applied=write))
        else:
            out.file.write(formats.to_sarif(result, formats.rule_infos(all_rules()), applied=write) + "\n")
        return report.exit_code(result, applied=write, exit_zero=exit_zero)
    if err.is_terminal and sys.stderr.isatty() and not quiet:  # never a progress bar into a pipe
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = _rich_console(stderr=True, force_terminal=err.color, no_color=not err.color)
        with Progress(TextColumn("porting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task("port", total=None)
            result = engine.run(paths, resolver, write=write, jobs=jobs, use_cache=not no_cache,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        result = engine.run(paths, resolver, write=write, jobs=jobs, use_cache=not no_cache)
    if statistics:  # as ruff's --statistics: counts instead of the diffs and findings
        for line in report.statistics(result, applied=write):
            out.print(line)
        for line in report.error_lines(result):  # -q hides the summary, never an error
            err.print(line, style="red")
        if not quiet:
            err.print(report.summary(result, applied=write), style="bold")
        return report.exit_code(result, applied=write, exit_zero=exit_zero)
    if show_diff:
        for file_result in sorted(result.changed, key=lambda r: (r.is_runtime, str(r.path))):
            if write and not file_result.written:
                continue
            if file_result.is_runtime and not show_runtime:
                if not quiet:
                    err.print(report.runtime_line(file_result, applied=write))
            else:
                report.print_diff(out, report.unified_diff(file_result))
    for text, style in report.finding_lines(result, applied=write, show_fixes=show_fixes):
        if quiet and not style:
            continue  # -q keeps errors and findings, drops notes
        err.print(text, style=style or None)
    if not quiet:
        err.print(report.summary(result, applied=write), style="bold")
    return report.exit_code(result, applied=write, exit_zero=exit_zero)


def _run_stdin(resolver, filename: Path, out: Output, err: Output, *, write: bool, quiet: bool, exit_zero: bool,
               show_fixes: bool) -> int:
    """`-`: port stdin as `filename`. diff prints the diff; rewrite prints the ported text (or the
    text as it was). The runtime module is not written: stdin has no folder."""
    data = sys.stdin.buffer.read()
    try:
        excluded = is_force_excluded(filename, resolver.for_path(filename))
    except ConfigError:
        excluded = False  # port_text reports the bad configuration
    if excluded:  # as ruff: an excluded --stdin-filename passes through unchanged, with nothing to say
        if write:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        return EXIT_OK
    result = engine.port_text(data, filename, resolver)
    run = RunResult([result], 1, [])
    if write:
        sys.stdout.buffer.write(result.new if result.new is not None else data)
        sys.stdout.flush()
        result.written = result.changed  # what was printed is the port: its findings read [fixed]
    elif result.changed:
        report.print_diff(out, report.unified_diff(result))
    for text, style in report.finding_lines(run, applied=write, show_fixes=show_fixes):
        if not quiet or style:
            err.print(text, style=style or None)
    if (not quiet and result.changed and result.runtime_import and result.runtime_path is not None
            and not result.runtime_path.exists()):
        err.print(f"note: the port imports {result.runtime_import}, which is not written for stdin: run "
                  f"`vsockport rewrite` on the project to add {display_path(result.runtime_path)}")
    return report.exit_code(run, applied=write, exit_zero=exit_zero)


@main.command()
@_port_options
@click.option("--diff", "show_diff", is_flag=True, help="Also print the diff of what was written.")
def rewrite(show_diff: bool, **options) -> None:
    """Port files and folders in place, and add the runtime module they import."""
    sys.exit(_run(**options, write=True, show_diff=show_diff))


@main.command()
@_port_options
def diff(**options) -> None:
    """Show the unified diff `rewrite` would apply; change nothing. Exits 1 while anything is left to port."""
    sys.exit(_run(**options, write=False, show_diff=True))


@main.command("rules")
@click.option("--markdown", is_flag=True, help="Print the full rules reference as Markdown (docs/rules.md).")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_rules(markdown: bool, output_format: str) -> None:
    """List the rules."""
    if markdown:
        from vsockport.docs import rules_markdown

        click.echo(rules_markdown(all_rules()), nl=False)
        return
    if output_format == "json":
        click.echo(formats.rules_json(formats.rule_infos(all_rules())))
        return
    from rich.table import Table

    table = Table("code", "name", "fix", "what it does")
    for rule in all_rules():
        table.add_row(rule.code, rule.name, rule.fix_safety, rule.summary())
    _rich_console().print(table)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--recorded", multiple=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also the endpoints a ported program recorded at run time (VSOCK_RECORD=FILE); repeatable.")
@click.option("--platform", type=click.Choice(["nitro"]), default="nitro", show_default=True,
              help="Where the program runs: nitro (an AWS Nitro Enclave behind its parent, CID 3).")
@click.option("--enclave-cid", type=click.IntRange(min=1, max=0xFFFFFFFE), default=None, metavar="CID",
              help="The enclave's CID, for the parent's ingress forwarders [$ENCLAVE_CID in the scripts].")
@click.option("--parent-cid", type=click.IntRange(min=1, max=0xFFFFFFFE), default=None, metavar="CID",
              help="The CID the program reaches the parent at [3 on nitro; 1 to try it all in one machine "
                   "with vsock_loopback, as the e2e suite does].")
@click.option("--serve", "served", multiple=True, type=click.IntRange(min=1, max=65535), metavar="PORT",
              help="A port the program serves that the code does not spell out (gunicorn -b :PORT); repeatable.")
@click.option("--exclude-endpoint", "ignored", multiple=True, metavar="HOST[:PORT]",
              help="An endpoint the code names but the program never dials (a documentation link): left out of "
                   "everything generated; repeatable.")
@click.option("--check-map", default=None, metavar="VALUE",
              help="A deployed VSOCK_CID_MAP value: name every endpoint it lacks (exit 1 if any).")
@click.option("--write", "write_dir", default=None, type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write the map, the vsock-proxy allowlist and the parent's scripts into DIR.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def endpoints(paths, recorded, platform, enclave_cid, parent_cid, served, ignored, check_map, write_dir, output_format) -> None:
    """List what a ported program dials and serves, and generate the other side of vsock: the
    enclave's VSOCK_CID_MAP, the parent's vsock-proxy allowlist and commands, and its ingress
    forwarders. PATHS are the program's files and folders (ported or not)."""
    from vsockport import endpoints as found_endpoints
    from vsockport.files import discover

    if not paths and not recorded:
        raise click.UsageError("name the program's files or folders, or --recorded FILE")
    found = found_endpoints.Found()
    discovery = discover(paths, lambda path: None)
    for path, message in discovery.errors:
        found.errors.append((display_path(path), message))
    for path in discovery.files:
        if path.suffix != ".py":
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            found.errors.append((display_path(path), f"cannot read: {exc.strerror}"))
            continue
        found_endpoints.scan_source(data, display_path(path), found)
    for path in recorded:
        found_endpoints.read_recorded(path, found)
    for port in served:
        found.serve(port, "--serve")
    found.ignore(ignored)
    plan = found_endpoints.plan(found, platform=platform, enclave_cid=enclave_cid,
                                parent_cid=found_endpoints.NITRO_PARENT_CID if parent_cid is None else parent_cid)
    missing = found_endpoints.missing_from_map(plan, check_map) if check_map is not None else []
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
        for name, text in plan.files().items():
            (write_dir / name).write_text(text)
            if name.endswith(".sh"):
                (write_dir / name).chmod(0o755)
    out = click.get_text_stream("stdout")
    if output_format == "json":
        document = plan.to_json()
        document["missing_from_map"] = missing
        document["unmapped_at_run_time"] = found.unmapped_at_run_time
        document["errors"] = [{"path": p, "message": m} for p, m in found.errors]
        out.write(json.dumps(document, indent=2) + "\n")
    else:
        _print_plan(out, plan, found)
    for where, message in found.errors:
        click.echo(f"{where}: error: {message}", err=True)
    for key in found.unmapped_at_run_time:
        click.echo(f"{key}: recorded without a map entry at run time (the generated map has it now)", err=True)
    for key in missing:
        click.echo(f"{key}: missing from the map given with --check-map: add "
                   f"{key}={plan.parent_cid}:{next(e.vport for e in plan.dials if e.key == key)}", err=True)
    sys.exit(EXIT_ERROR if found.errors else EXIT_PENDING if missing else EXIT_OK)


def _print_plan(out, plan, found) -> None:
    lines = [f"The program dials {len(plan.dials)} endpoint{'s' if len(plan.dials) != 1 else ''} and serves "
             f"{len(plan.serves)} port{'s' if len(plan.serves) != 1 else ''} ({plan.platform}: the parent is CID "
             f"{plan.parent_cid}).", ""]
    for endpoint in plan.dials:
        lines.append(f"dials {endpoint.key:<40} -> vsock port {endpoint.vport} on the parent  "
                     f"({', '.join(endpoint.sources[:3])}{', ...' if len(endpoint.sources) > 3 else ''})")
    for served in plan.serves:
        lines.append(f"serves port {served.port:<34} ({', '.join(served.sources[:3])})")
    lines += ["", "# In the enclave:", f"VSOCK_CID_MAP={plan.map_value()}", "",
              "# On the parent, vsock-proxy.yaml:", plan.allowlist_yaml().rstrip("\n"), "",
              "# On the parent, egress (one vsock-proxy per endpoint):", *plan.vsock_proxy_commands(), "",
              "# ... or the same with socat:", *plan.socat_egress(), "",
              "# On the parent, ingress:", *(plan.ingress() or ["# (no server port found)"])]
    out.write("\n".join(lines) + "\n")


@main.command()
@click.argument("rule")
def explain(rule: str) -> None:
    """Show a rule's documentation and examples (RULE: code like VS003 or name like bind-address)."""
    found = find_rule(rule)
    if found is None:
        known = ", ".join(f"{r.code} ({r.name})" for r in all_rules())
        click.echo(f"vsockport: error: unknown rule {rule!r}; known rules: {known}", err=True)
        sys.exit(EXIT_USAGE)  # a bad argument, as for every other command
    text = [f"# {found.code} {found.name}", "", found.documentation(), "", f"Fix safety: {found.fix_safety}"]
    for index, example in enumerate(found.examples, 1):
        flags = f" (ported with {example.command_line()})" if example.command_line() else ""
        text += ["", f"## Example {index}: before{flags}", example.before.rstrip("\n")]
        text += ["", "## after" if example.after else "## after (unchanged)", (example.after or example.before).rstrip("\n")]
    click.echo("\n".join(text))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--python", default=sys.executable, show_default="this interpreter", metavar="PATH",
              help="Interpreter to diagnose (the one that runs your ported program).")
@click.option("--backend", type=click.Choice(["auto", "native", "ctypes"]), default=None,
              help="Force the runtime backend, as VSOCK_RUNTIME_BACKEND does.")
def doctor(as_json: bool, python: str, backend: str | None) -> None:
    """Show what this machine offers for vsock: Python support, address family, local CID,
    /dev/vsock, transports, socket types and loopback. Probes by creating and binding sockets,
    never by connecting.

    \b
    Exit codes: 0 vsock streams work here, 1 they do not, 2 the runtime could not run.
    """
    from vsockport import doctor as doc

    try:
        result = doc.diagnose(python, backend)
    except (doc.DoctorError, OSError) as exc:
        click.echo(f"vsockport: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        doc.render(result, _rich_console())
    sys.exit(EXIT_OK if doc.usable(result) else EXIT_PENDING)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--share", "shares", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also share this folder read-write at the same path (repeatable).")
@click.option("--timeout", type=click.FloatRange(min=0), default=600, show_default=True,
              help="Stop the guest after this many seconds (0: never).")
@click.option("-e", "--env", "env", multiple=True, metavar="NAME=VALUE", help="Set a variable for COMMAND (repeatable).")
@click.option("--memory", type=click.IntRange(min=256), default=2048, show_default=True, help="Guest memory in MiB.")
@click.option("--cpus", type=click.IntRange(min=1), default=2, show_default=True, help="Guest CPUs.")
@click.option("--setup", is_flag=True, help="Install and build everything the sandbox needs, then exit.")
@click.option("--hybrid", "hybrid_path", metavar="UDS_PATH",
              help="Run a stand-in for Firecracker's hybrid-vsock muxer on this Unix socket in the guest.")
@click.option("--guest-to-host", "guest_to_host", multiple=True, type=click.IntRange(min=0, max=0xFFFFFFFE),
              metavar="PORT", help="With --hybrid: forward guest connections to vsock PORT to UDS_PATH_PORT (repeatable).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def sandbox(shares, timeout, env, memory, cpus, setup, hybrid_path, guest_to_host, command) -> None:
    """Run COMMAND in a throw-away Linux guest where AF_VSOCK works over loopback (CID 1).

    \b
    The guest sees this machine's files read-only (writes vanish) and the current folder plus
    --share folders read-write at the same paths. Its /tmp, /run and /dev/shm are its own, empty:
    a host path under /tmp is there only if it is the current folder or shared. Run from /, nothing
    is shared. It has no network card and no vhost-vsock device.
    Exit code: COMMAND's; 124 when --timeout expired; 125 when the sandbox could not be set up or
    the VM failed (the console tail is printed).

    \b
    --hybrid UDS_PATH stands in for a Firecracker / Cloud Hypervisor VMM (which need KVM): a muxer in
    the guest speaks their hybrid-vsock protocol on UDS_PATH (CONNECT <port> / OK <port>) to the guest's
    vsock ports on CID 1, and forwards guests' connections to --guest-to-host ports to UDS_PATH_PORT.
    It is a stand-in, not the VMM (see vsockport/sandbox/muxer.py).

    \b
    Example: vsockport sandbox -- python3 -c "import socket; print(socket.AF_VSOCK)"
    """
    from vsockport import sandbox as box

    def log(message: str) -> None:
        click.echo(f"vsockport sandbox: {message}", err=True)

    if setup:
        try:
            artifacts = box.prepare(log)
        except box.SetupError as exc:
            log(str(exc))
            sys.exit(box.EXIT_SANDBOX_FAILURE)
        log(f"ready: kernel {artifacts.kernel_release}, {artifacts.vmlinux.parent}")
        if not command:
            sys.exit(EXIT_OK)
    if not command:
        raise click.UsageError("give a COMMAND to run (after --), or --setup")
    variables = {}
    for item in env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint="--env")
        variables[name] = value
    if guest_to_host and not hybrid_path:
        raise click.UsageError("--guest-to-host needs --hybrid UDS_PATH")
    hybrid = None
    if hybrid_path:
        from vsockport.sandbox.vm import HybridVmm

        hybrid = HybridVmm(os.path.abspath(hybrid_path), tuple(guest_to_host))
    sys.exit(box.run(list(command), shares=list(shares), timeout=timeout, env=variables, memory=memory, cpus=cpus,
                     log=log, hybrid=hybrid))
