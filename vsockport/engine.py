"""discover files -> byte prefilter -> cache -> port each file (the pipeline) -> write.

The engine knows nothing about sockets: rules do. Results are plain data that the CLI, the reports
and the tests consume the same way.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from vsockport import cache
from vsockport.config import Config
from vsockport.files import atomic_write, discover
from vsockport.pipeline import PortError, port_source
from vsockport.results import Finding, PortResult
from vsockport.rules import ALL_RULES, PortOptions, Rule
from vsockport.runtime import inject

_PARALLEL_THRESHOLD = 16


@dataclass
class FileResult:
    path: Path
    old: bytes | None = None  # None: the file does not exist yet (a runtime file to add)
    new: bytes | None = None  # None: nothing to change
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    error_at: tuple[int, int] | None = None  # (line, column) the error points at, when it has a place
    encoding: str = "utf-8"
    runtime_import: str | None = None  # set when the module (now) imports the runtime
    is_runtime: bool = False
    # For the stat index: the file's signature when read, and its result key ("" = nothing to port).
    signature: list[int] | None = None
    cache_key: str | None = None

    @property
    def changed(self) -> bool:
        return self.new is not None and self.new != self.old


@dataclass
class RunResult:
    files: list[FileResult]
    scanned: int
    errors: list[tuple[Path, str]]  # discovery and write errors: (path, message)

    @property
    def changed(self) -> list[FileResult]:
        return [f for f in self.files if f.changed]

    @property
    def findings(self) -> list[tuple[FileResult, Finding]]:
        return [(f, finding) for f in self.files for finding in f.findings]

    @property
    def error_count(self) -> int:
        return len(self.errors) + sum(1 for f in self.files if f.error)


@lru_cache(maxsize=64)
def _triggers(rules: tuple[type[Rule], ...]) -> tuple[bytes, ...]:
    return tuple(sorted({t for rule in rules for t in rule.triggers}))


def triggers_for(rules: Sequence[type[Rule]]) -> tuple[bytes, ...]:
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
    rules: tuple[type[Rule], ...]
    use_cache: bool = False


def _port_one(job: _Job) -> FileResult:
    result = FileResult(job.path)
    try:
        signature = cache.signature(job.path) if job.use_cache else None
        data = job.path.read_bytes()
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    if not may_need_porting(data, triggers_for(job.rules)):
        result.signature, result.cache_key = signature, ""
        return result
    if inject.is_runtime_file(job.path, data, job.options.runtime_import.lstrip(".")):
        return result
    if len(data) > MAX_FILE_BYTES:
        result.error = (f"too large to port ({len(data) / 2**20:.1f} MiB; the limit is {MAX_FILE_BYTES // 2**20} MiB): "
                        "left as it is (exclude it, or split it)")
        return result
    cache_key = cache.key(data, job.options, job.rules) if job.use_cache else None
    ported = cache.load(cache_key) if cache_key else None
    try:
        if ported is None:
            try:
                ported = port_source(data, job.options, job.rules)
            except RecursionError:
                ported = _port_deep_source(data, job.options, job.rules)
            if cache_key:
                cache.store(cache_key, ported)
    except PortError as exc:
        result.error, result.error_at = f"{exc.kind}: {exc.message}", ((exc.line, exc.column) if exc.line else None)
        return result
    except RecursionError:
        result.error, result.error_at = "cannot port: nesting too deep even with a 512 MiB stack", (1, 1)
        return result
    _take(result, ported, job.options)
    result.signature, result.cache_key = signature, cache_key
    if ported.new is not None:
        result.old = data  # only changed files carry their bytes back (for the diff)
    return result


def _take(result: FileResult, ported: PortResult, options: PortOptions) -> None:
    result.new, result.findings, result.encoding = ported.new, ported.findings, ported.encoding
    if ported.uses_runtime:
        result.runtime_import = options.runtime_import


_DEEP_STACK_BYTES = 512 * 1024 * 1024
_DEEP_RECURSION_LIMIT = 200_000


def _port_deep_source(data: bytes, options: PortOptions, rules: Sequence[type[Rule]]) -> PortResult:
    """Retry a deeply nested module (long implicit string concatenations, say) on a big stack.

    libcst walks trees recursively; a thread with a large stack and a raised recursion limit handles
    files that the default limit cannot, without raising the limit for every file.
    """
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["value"] = port_source(data, options, rules)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    previous_stack = threading.stack_size(_DEEP_STACK_BYTES)
    previous_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_DEEP_RECURSION_LIMIT)
    try:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(previous_limit)
        threading.stack_size(previous_stack)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _port_chunk(jobs: list[_Job]) -> list[FileResult]:
    return [_port_one(job) for job in jobs]


def run(
    paths: Sequence[Path],
    config: Config,
    *,
    write: bool,
    rules: Sequence[type[Rule]] = ALL_RULES,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = False,
) -> RunResult:
    discovery = discover(paths, config.exclude, config.respect_gitignore, config.force_exclude)
    errors = list(discovery.errors)
    work = []
    # Per folder and per import name, not per file: a warm run over 10k files is mostly this loop.
    placer = inject.Placer(config.runtime_module)
    options_by_import: dict[str, PortOptions] = {}
    same_rules = config.rules_for(Path("-"), rules) if not config.per_file_ignores else None
    for path in discovery.files:
        where = placer.place(path)
        options = options_by_import.get(where.import_name)
        if options is None:
            options = options_by_import[where.import_name] = PortOptions(
                cid_map=dict(config.cid_map), runtime_import=where.import_name, unsafe_fixes=config.unsafe_fixes)
        work.append(_Job(path, options, same_rules or config.rules_for(path, rules), use_cache))
    results = _execute_cached(paths, work, jobs, progress) if use_cache else _execute(work, jobs, progress)
    results.extend(_runtime_results(results, config.runtime_module))
    if write:
        for result in results:
            if result.changed:
                try:
                    atomic_write(result.path, result.new)  # type: ignore[arg-type]
                except OSError as exc:
                    errors.append((result.path, f"cannot write: {exc.strerror or exc}"))
                    result.new = None
    return RunResult(results, len(discovery.files), errors)


def _execute(work: list[_Job], jobs: int | None, progress) -> list[FileResult]:
    jobs = jobs or os.cpu_count() or 1
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
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for chunk_result in pool.map(_port_chunk, chunks):
            results.extend(chunk_result)
            if progress:
                progress(len(results), total)
    return results


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
    result = FileResult(job.path, cache_key=result_key)
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


def _runtime_results(results: list[FileResult], module_name: str) -> list[FileResult]:
    """One result per runtime file that ported modules need: added, updated, or already current."""
    needed: dict[Path, FileResult] = {}
    placer = inject.Placer(module_name)
    for result in results:
        if result.runtime_import is None or result.error:
            continue
        target = placer.place(result.path).runtime_path
        if target in needed:
            continue
        existing = None
        try:
            existing = target.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            needed[target] = FileResult(target, error=f"cannot read runtime: {exc.strerror or exc}", is_runtime=True)
            continue
        needed[target] = FileResult(target, old=existing, new=inject.runtime_update(existing), is_runtime=True)
    return list(needed.values())
