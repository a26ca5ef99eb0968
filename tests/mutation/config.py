"""What the mutation run mutates and which tests it may run: the one place to change them.

When modules move (a restructuring), change `MODULES`; the tests run for each mutant are then
chosen by the run itself (those that executed the mutated function on the unmutated tree).
"""

from __future__ import annotations

# The modules that keep the promises, as paths in the repository.
MODULES = (
    "tap_contactbased/job.py",
    "tap_contactbased/plan.py",
    "tap_contactbased/scheduler.py",
    "tap_contactbased/lifecycle.py",
    "tap_contactbased/summary.py",
    "tap_contactbased/readers.py",
    "tap_contactbased/windows.py",
    "tap_contactbased/coercion.py",
    "tap_contactbased/streams/enrichment.py",
    "tap_contactbased/api_client.py",
    "tap_contactbased/state.py",
    "tap_contactbased/bodies.py",
    "tap_contactbased/answers.py",
)

# The test files whose tests may be chosen: the suite without the Meltano runs of tests/e2e
# (they run the tap installed in Meltano's own environment, which a mutant does not reach),
# without the tests of the local API, of the benchmark and of this tool, which run no tap
# code, and without the dbt models' tests: they need the dbt utility Meltano installs in
# the repository (not in the run's copies), and the tap runs they start are the kill
# campaigns that tests/test_kill_campaign.py runs too.
TEST_FILES = "tests/test_*.py"
IGNORED_TEST_FILES = (
    "tests/test_fake_api.py",
    "tests/test_bench_batch.py",
    "tests/test_mutation_tool.py",
    "tests/test_dbt_models.py",
)

# A mutant's tests are stopped after TIMEOUT_BASE_SECONDS plus TIMEOUT_FACTOR times what they
# took on the unmutated tree (measured while tracing, so already slower than a plain run).
TIMEOUT_BASE_SECONDS = 30.0
TIMEOUT_FACTOR = 3.0
# And each test is stopped after TEST_TIMEOUT_BASE_SECONDS plus TIMEOUT_FACTOR times what it
# took: a mutant that hangs its first test is then known in seconds, not in many minutes.
TEST_TIMEOUT_BASE_SECONDS = 30.0

# The committed lists a run compares its survivors with.
SURVIVORS_FILE = "tests/mutation/survivors.md"  # equivalent mutants, each with its reason
GAPS_FILE = "tests/mutation/gaps.md"  # mutants no test kills yet: each a missing test
