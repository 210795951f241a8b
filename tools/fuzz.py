"""A longer, random fuzz run than CI's: `python tools/fuzz.py [EXAMPLES]` (default 2000).

Runs the properties of tests/test_fuzz.py (no crash, valid output, focused == whole, stable rerun) on
mutated socket programs mixed with hypothesmith-generated code, with a fresh random seed each time.
Hypothesis prints the smallest failing program it finds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.test_fuzz import check, programs  # noqa: E402


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 2000

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(programs)
    def fuzz(source: str) -> None:
        check(source)

    fuzz()
    print(f"{examples} examples: no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
