"""discover files -> byte prefilter -> cache -> port each file (the pipeline) -> write.

The engine knows nothing about sockets: rules do. Results are plain data that the CLI, the reports
and the tests consume the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from vsockport import cache, compiled, libraries
from vsockport.config import Config, ConfigError, ConfigResolver
from vsockport.files import ChangedOnDisk, atomic_write, discover, is_stale_temporary, is_writable
from vsockport.results import FileResult, Finding, PortResult, RunResult, State
from vsockport.options import PortOptions
from vsockport.rules import RuleEntry, catalog, rule_classes
from vsockport.runtime import inject

_PARALLEL_THRESHOLD = 16


@lru_cache(maxsize=64)
def _triggers(rules: tuple[RuleEntry, ...]) -> tuple[bytes, ...]:
    return tuple(sorted({t for rule in rules for t in rule.triggers}))


def triggers_for(rules: Sequence[RuleEntry]) -> tuple[bytes, ...]:
    return _triggers(tuple(rules))  # every scanned file asks: once per rule selection


def may_need_porting(data: bytes, triggers: Sequence[bytes]) -> bool:
    """Cheap byte test: files without any rule's trigger bytes are never parsed."""
    return any(t in data for t in triggers)


# Larger files (generated tables, bundles) take minutes in libcst and are never hand-written socket code.
MAX_FILE_BYTES = 8 * 2**20


@dataclass(frozen=True)
class _Job:
    path: Path
    options: PortOptions
    rules: tuple[RuleEntry, ...]  # or rule classes: what a rule is, without importing it (or libcst)
    use_cache: bool = False
    runtime_path: Path | None = None
    compiled: bool = False  # an extension module or Cython source: scanned (VS017), never parsed


def _port_one(job: _Job) -> FileResult:
    result = FileResult(job.path, runtime_path=job.runtime_path)
    if job.compiled:
        return _scan_compiled(result, job)
    try:
        signature = cache.signature(job.path) if job.use_cache else None
        data = job.path.read_bytes()
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    return _port_data(result, data, job, signature)


def _scan_compiled(result: FileResult, job: _Job) -> FileResult:
    """VS017 on an extension module or Cython source: a finding per socket use, needing review."""
    try:
        signature = cache.signature(job.path) if job.use_cache else None
        uses = compiled.socket_uses(job.path)
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    result.findings = tuple(
        Finding(compiled.CODE, compiled.NAME, compiled.message(job.path, what), line, column, line, column + 1,
                State.NEEDS_REVIEW) for line, column, what in uses)
    if signature is not None:  # the stat index serves it next time without reading it
        result.signature = signature
        result.cache_key = cache.key(repr(signature).encode(), job.options, job.rules) if uses else ""
        if uses:
            cache.store(result.cache_key, PortResult(None, result.findings, "utf-8", False))
    return result


def _uses_sockets(path: Path, triggers) -> bool:
    try:
        return may_need_porting(path.read_bytes(), triggers)
    except OSError:
        return True


def port_text(data: bytes, path: Path, config: Config | ConfigResolver,
              rules: Sequence[RuleEntry] | None = None) -> FileResult:
    """Port bytes that are not read from `path` (stdin) as the file at `path` would be ported: its
    configuration, its runtime import. Nothing is written."""
    result = FileResult(path)
    rules = catalog() if rules is None else rules
    try:
        settings = ConfigResolver.of(config).for_path(path)
    except ConfigError as exc:
        result.error = f"bad configuration: {exc}"
        return result
    where = inject.Placer(settings.runtime_module).place(path)
    options = PortOptions(cid_map=dict(settings.cid_map), runtime_import=where.import_name,
                          unsafe_fixes=settings.unsafe_fixes, vmci_datagrams=settings.vmci_datagrams)
    result.runtime_path = where.runtime_path
    return _port_data(result, data, _Job(path, options, settings.rules_for(path, rules), False, where.runtime_path), None)


def _port_data(result: FileResult, data: bytes, job: _Job, signature) -> FileResult:
    if not may_need_porting(data, triggers_for(job.rules)):
        result.signature, result.cache_key = signature, ""
        return result
    if inject.is_runtime_file(data):  # a vsockport runtime, under any name: never ported
        wanted = job.options.runtime_import.lstrip(".").rpartition(".")[2]
        if job.path.stem != wanted:
            result.note = (f"a vsockport runtime named {job.path.stem}, left as it is: the modules ported with it keep "
                           f"importing it (the runtime module is now {wanted}; rename their imports to switch)")
        return result
    if len(data) > MAX_FILE_BYTES:
        result.error = (f"too large to port ({len(data) / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB): "
                        "left as it is (exclude it, or split it)")
        return result
    cache_key = cache.key(data, job.options, job.rules) if job.use_cache else None
    ported = cache.load(cache_key) if cache_key else None
    if ported is None:
        from vsockport.pipeline import PortError, port_source  # libcst and the rules: only for a file to port

        try:
            ported = port_source(data, job.options, rule_classes(job.rules))
        except PortError as exc:
            result.error, result.error_at = f"{exc.kind}: {exc.message}", ((exc.line, exc.column) if exc.line else None)
            return result
        if cache_key:
            cache.store(cache_key, ported)
    _take(result, ported, job.options)
    result.signature, result.cache_key = signature, cache_key
    if ported.new is not None:
        result.old = data  # only changed files carry their bytes back (for the diff)
    return result


def _take(result: FileResult, ported: PortResult, options: PortOptions) -> None:
    result.new, result.findings, result.encoding = ported.new, ported.findings, ported.encoding
    if ported.uses_runtime:
        result.runtime_import = options.runtime_import
    if ported.script_runtime:
        # Beside the file Python runs: a symlinked script's folder on sys.path is its target's.
        result.script_runtime_path = Path(os.path.realpath(result.path)).parent / f"{options.runtime_import.lstrip('.')}.py"


def _port_chunk(jobs: list[_Job]) -> list[FileResult]:
    return [_port_one(job) for job in jobs]


def run(
    paths: Sequence[Path],
    config: Config | ConfigResolver,
    *,
    write: bool,
    rules: Sequence[RuleEntry] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = False,
) -> RunResult:
    """Port every Python file under `paths`, each with its own settings (`config`: one Config for all,
    or a ConfigResolver that finds each file's), and with `write`, write the results safely."""
    resolver = ConfigResolver.of(config)
    rules = catalog() if rules is None else rules

    def settings(path: Path) -> Config | None:
        try:
            return resolver.for_path(path)
        except ConfigError:
            return None

    discovery = discover(paths, settings)
    errors = list(discovery.errors)
    named = set(paths)
    compiled_entry = next((r for r in rules if r.code == compiled.CODE), None)
    # One line per unusable configuration file, however many files it governs (they stay untouched).
    bad_configs: dict[str, tuple[Path, list[Path]]] = {}
    for root in paths:  # a root's broken configuration is the run's error, even with no file to port
        try:
            resolver.for_path(root)
        except ConfigError as exc:
            bad_configs.setdefault(str(exc), (root, []))
        except OSError:
            pass
    work: list[_Job] = []
    refused: list[FileResult] = []
    # Per folder and per import name, not per file: a warm run over 10k files is mostly this loop.
    placers: dict[str, inject.Placer] = {}
    options_of: dict[tuple[int, str], PortOptions] = {}
    for path in discovery.files:
        try:
            config = resolver.for_path(path)
        except ConfigError as exc:
            bad_configs.setdefault(str(exc), (path, []))[1].append(path)
            continue
        if path.suffix == ".ipynb":
            if path in named or _uses_sockets(path, triggers_for(config.rules_for(path, rules))):
                refused.append(FileResult(path, error="notebooks are not ported (export the code with `jupyter "
                                                      "nbconvert --to script` and port that): left untouched"))
            continue  # a walked notebook without socket code has nothing to port
        if compiled.is_compiled(path):
            if any(rule.code == compiled.CODE for rule in config.rules_for(path, rules)):
                work.append(_Job(path, PortOptions(), (compiled_entry,), use_cache, None, compiled=True))
            continue
        if path.suffix == ".pyi":
            continue  # a stub holds declarations, not sockets: there is nothing to port, and no runtime
        placer = placers.get(config.runtime_module)
        if placer is None:
            placer = placers[config.runtime_module] = inject.Placer(config.runtime_module)
        where = placer.place(path)
        key = (id(config), where.import_name)
        options = options_of.get(key)
        if options is None:
            options = options_of[key] = PortOptions(cid_map=dict(config.cid_map), runtime_import=where.import_name,
                                                    unsafe_fixes=config.unsafe_fixes,
                                                    vmci_datagrams=config.vmci_datagrams)
        work.append(_Job(path, options, config.rules_for(path, rules), use_cache, where.runtime_path))
    for message, (where, governed) in bad_configs.items():
        left = f" ({len(governed)} file{'s' if len(governed) != 1 else ''} left unported)" if governed else ""
        errors.append((where, f"bad configuration: {message}{left}"))
    results = _execute_cached(paths, work, jobs, progress) if use_cache else _execute(work, jobs, progress)
    if any(rule.code == libraries.CODE for rule in rules):
        _report_libraries(results, work, paths, resolver, rules, use_cache)
    results.extend(refused)
    results.extend(inject.runtime_results(results))
    notes = _stale_temporaries(discovery.temporaries, remove=write)
    notes += [(r.path, r.note) for r in results if r.note]
    if write:
        _write(results, errors)
    return RunResult(results, len(discovery.files), errors, notes)


def _report_libraries(results: list[FileResult], work: list[_Job], roots: Sequence[Path], resolver: ConfigResolver,
                      rules: Sequence[RuleEntry], use_cache: bool) -> None:
    """VS019: a finding at each import of a library outside the run that would still change if ported."""
    own_rules = [rule for rule in rules if rule.code != libraries.CODE]

    def changed_files(location: Path) -> set[Path]:
        inner = run([location], resolver, write=False, rules=own_rules, jobs=1, use_cache=use_cache)
        return {Path(os.path.realpath(r.path)) for r in inner.files if r.changed and not r.is_runtime}

    where = [Path(os.path.realpath(root)) for root in roots]  # (realpath: a symlink loop is the run's error)
    jobs = {job.path: job for job in work if not job.compiled and job.path.suffix == ".py"}
    located: dict[tuple[str, Path], Path | None] = {}
    provided = lru_cache(maxsize=None)(lambda: libraries.import_roots(jobs))  # (asked only where no import is found beside)
    verdicts: dict[str, libraries.Verdicts] = {}  # per runtime module name
    index = libraries.ImportIndex(roots) if use_cache else None
    for result in results:
        job = jobs.get(result.path)
        if job is None or result.error or not any(rule.code == libraries.CODE for rule in job.rules):
            continue
        read = (lambda result=result, job=job: result.old if result.old is not None else job.path.read_bytes())
        try:
            names = index.names(job.path, read) if index is not None else libraries.imported_names(read())
        except OSError:
            continue
        runtime = job.options.runtime_import.lstrip(".").rpartition(".")[2]
        outside = libraries.unported_outside(names, job.path, where, runtime, located, provided)
        if not outside:
            continue
        try:
            data = read()
        except OSError:
            continue
        # A program may run any import it makes; one tried for an optional library is a note (whether it is
        # installed where the program runs, only its user knows); one for type checkers never runs.
        sites = [site for site in libraries.import_sites(data, set(outside)) if site[3] != libraries.TYPING]
        judge = verdicts.setdefault(runtime, libraries.Verdicts(changed_files, runtime))
        found = {}
        named = libraries.submodules_named(data)
        for name in {site[0] for site in sites}:
            submodules = named.get(name, frozenset()) if outside[name].is_dir() else frozenset()
            verdict = judge.of(outside[name], submodules)
            if verdict is not None:
                found[name] = libraries.message(name, outside[name], *verdict)
        if found:
            _add_library_findings(result, data, [site for site in sites if site[0] in found], found)
    if index is not None:
        index.save()


def _add_library_findings(result: FileResult, data: bytes, sites: list, found: dict[str, str]) -> None:
    ported = libraries.import_sites(result.new, set(found)) if result.new is not None else []
    ported = [site for site in ported if (site[0], site[3]) in {(s[0], s[3]) for s in sites}]
    if len(ported) != len(sites):
        ported = []  # (the port never touches these imports: the same ones, in the same order)
    findings = [
        Finding(libraries.CODE, libraries.NAME,
                ("an optional import (tried; used where it is installed): " if kind == libraries.OPTIONAL else "") + found[name],
                line, column, line, column + 1, State.NOTE if kind == libraries.OPTIONAL else State.NEEDS_REVIEW,
                ported_at=(ported[i][1], ported[i][2], ported[i][1], ported[i][2] + 1) if ported else None)
        for i, (name, line, column, kind) in enumerate(sites)]
    result.findings = tuple(sorted((*result.findings, *findings), key=lambda f: (f.line, f.column)))


def _stale_temporaries(temporaries: list[Path], *, remove: bool) -> list[tuple[Path, str]]:
    """A killed run's temporary files (its writes never landed): rewrite removes them, diff names them."""
    notes = []
    for temporary in temporaries:
        if not is_stale_temporary(temporary):
            continue
        if not remove:
            notes.append((temporary, "a temporary file left by an interrupted vsockport run (rewrite removes it)"))
            continue
        try:
            temporary.unlink()
        except OSError as exc:
            notes.append((temporary, f"cannot remove this temporary file of an interrupted run: {exc.strerror}"))
        else:
            notes.append((temporary, "removed: a temporary file left by an interrupted vsockport run"))
    return notes


def _write(results: list[FileResult], errors: list[tuple[Path, str]]) -> None:
    """Write what changed, never leaving a module without its runtime or a runtime without a module:
    a runtime first (only when one of its modules can be written), then its modules."""
    modules = [r for r in results if r.changed and not r.is_runtime and not r.error]
    for runtime in [r for r in results if r.is_runtime and r.changed and not r.error]:
        needing = [m for m in modules if runtime.path in m.runtime_paths]
        if needing and not any(is_writable(m.path) for m in needing):
            runtime.new = None  # none of its modules can be written: a new runtime would be an orphan
            continue
        try:
            atomic_write(runtime.path, runtime.new)  # type: ignore[arg-type]
            runtime.written = True
        except OSError as exc:
            runtime.error = f"cannot write: {exc.strerror or exc}"
            for module in needing:
                module.error = f"not written: its runtime {runtime.path} could not be written"
    for module in modules:
        if module.error:
            continue
        try:
            atomic_write(module.path, module.new, expected=module.old)  # type: ignore[arg-type]
            module.written = True
        except ChangedOnDisk as exc:
            module.error = exc.strerror
        except OSError as exc:
            module.error = f"cannot write: {exc.strerror or exc}"
    for runtime in [r for r in results if r.is_runtime and r.written and r.old is None]:
        if not any(m.written for m in modules if runtime.path in m.runtime_paths):
            runtime.path.unlink(missing_ok=True)  # every module it was for failed: leave no orphan
            runtime.written, runtime.new = False, None


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may run on (containers, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _execute(work: list[_Job], jobs: int | None, progress) -> list[FileResult]:
    # More workers than CPUs only adds processes (black caps its workers the same way).
    jobs = min(jobs or usable_cpus(), usable_cpus())
    total = len(work)
    if jobs <= 1 or total < _PARALLEL_THRESHOLD:
        results = []
        for index, job in enumerate(work, 1):
            results.append(_port_one(job))
            if progress:
                progress(index, total)
        return results
    # Chunks amortise process hand-off; small enough that progress stays live and the load balanced.
    size = max(1, min(64, total // (jobs * 8)))
    chunks = [work[i : i + size] for i in range(0, total, size)]
    results = []
    from concurrent.futures import ProcessPoolExecutor  # only runs with many files to port pay for it

    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), initializer=_die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        for chunk_result in pool.map(_port_chunk, chunks):
            results.extend(chunk_result)
            if progress:
                progress(len(results), total)
    return results


def _die_with_parent(parent: int) -> None:
    """A worker's first step: end when the run's main process ends, however it ends. A SIGKILLed
    parent never tells its pool to stop, and the workers would wait for work forever."""
    import signal
    import threading
    import time

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG (Linux)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # elsewhere: notice the parent is gone (the worker is re-parented)
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _execute_cached(roots: Sequence[Path], work: list[_Job], jobs: int | None, progress) -> list[FileResult]:
    """Serve unchanged files from the stat index without reading them; port the rest."""
    index = cache.StatIndex(roots)
    results: list[FileResult | None] = [None] * len(work)
    pending: list[int] = []
    settings_of: dict[tuple[int, tuple], str] = {}
    for position, job in enumerate(work):
        settings = settings_of.get((id(job.options), job.rules))
        if settings is None:
            settings = settings_of[(id(job.options), job.rules)] = cache.settings_key(job.options, job.rules)
        result_key = index.lookup(job.path, settings)
        hit = _from_cache(job, result_key) if result_key is not None else None
        if hit is None:
            pending.append(position)
        else:
            results[position] = hit
    for position, result in zip(pending, _execute([work[p] for p in pending], jobs, progress)):
        results[position] = result
        if result.signature is not None and result.cache_key is not None and not result.error:
            job = work[position]
            index.record(result.path, result.signature, settings_of[(id(job.options), job.rules)], result.cache_key)
    index.save()
    return results  # type: ignore[return-value]


def _from_cache(job: _Job, result_key: str) -> FileResult | None:
    result = FileResult(job.path, cache_key=result_key, runtime_path=job.runtime_path)
    if result_key == "":
        return result  # nothing to port, and the file is unchanged
    ported = cache.load(result_key)
    if ported is None:
        return None
    _take(result, ported, job.options)
    if result.new is not None:
        try:
            result.old = job.path.read_bytes()
        except OSError:
            return None
        if cache.key(result.old, job.options, job.rules) != result_key:
            return None  # changed behind an identical signature: port it again
    return result
