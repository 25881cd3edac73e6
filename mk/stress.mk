# `make test-stress` (issue 6): the reliability soak at full length, 10
# minutes of mixed churn (tests/test_rel_soak.py), as root. `make test` runs
# the same soak for OOMKILLER_SOAK_SECONDS=90 (the test's default).

STRESS_SECONDS ?= 600

.PHONY: test-stress

test-stress: oomkiller progs
	OOMKILLER_SOAK_SECONDS=$(STRESS_SECONDS) $(PYTHON) -m pytest -q -s tests/test_rel_soak.py $(PYTEST_ARGS)
