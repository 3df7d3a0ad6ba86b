"""Trying flows out before production: takes sample conversations and flow test files (YAML),
gives dry-run reports and test results, every event run through the real Engine.

`samples` reads sample files (positions from the deployment loader's index), `driver` runs them
through a project's Engine, `report` renders what happened, `expectations` checks a test's
`expect:` against it, `flowtests` runs test files (`flowlang test`) and `coverage` finds what no
test reached. `flowlang dry-run` and `flowlang test` are these with a command line.

    report = run_samples(project, load_samples(Path("examples/messages.yaml")))
    print(report.render())
"""

from flowlang.harness.driver import run_samples
from flowlang.harness.expectations import EXPECTATION_KEYS, EXPECTATIONS, check_expectations
from flowlang.harness.flowtests import TestResult, TestRun, run_test_paths
from flowlang.harness.report import DryRunReport, StepReport
from flowlang.harness.samples import SampleError, SampleEvent, Samples, load_samples
from flowlang.harness.selection import KeywordError, keyword_filter

__all__ = [
    "EXPECTATIONS",
    "EXPECTATION_KEYS",
    "DryRunReport",
    "KeywordError",
    "SampleError",
    "SampleEvent",
    "Samples",
    "StepReport",
    "TestResult",
    "TestRun",
    "check_expectations",
    "keyword_filter",
    "load_samples",
    "run_samples",
    "run_test_paths",
]
